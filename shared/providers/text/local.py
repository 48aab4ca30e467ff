"""LocalTextGenerator: the offline, keyless writer and the fallback when Gemini fails.

It assembles a note from the routine's sentence templates (opening, one topic line, body
lines, closing) in the note's language. Choices are made by a RNG seeded from
(routine, topic, language, seed), so the same request always gives the same note and the
output can be tested exhaustively.

The topic is woven in at most once. A template cannot paraphrase, so only a short noun-like
topic ("my exam", "mi entrevista") is quoted; a longer or sentence-like topic ("I want to stop
procrastinating") is referred to generically ("what is on my mind"), which keeps the note
natural and guarantees the post-check against echoing the topic passes.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import TYPE_CHECKING

from shared.perform.routines import Templates, get_routine
from shared.perform.text_checks import ECHO_MIN_WORDS
from shared.providers.text.base import GeneratedText

if TYPE_CHECKING:
    from shared.perform.prompt import VoiceNotePrompt

PROVIDER = "local"
MODEL = "template-v1"

_MAX_QUOTED_WORDS = ECHO_MIN_WORDS - 1  # longer topics would trip the echo check
_MAX_QUOTED_CHARS = 40
# A topic that starts like a sentence reads badly after "about ..." / "en ...".
_SENTENCE_STARTERS = frozenset("""i i'm im me we you it is are am was be do don't can will want need feel
    have has how why what when should please ignore tell say write
    yo estoy soy quiero necesito tengo siento me no cómo como por qué porque cuando
    debo puedo dime di escribe ignora""".split())
# Letters only (any script), words joined by single spaces, inner apostrophes or hyphens,
# optional final punctuation: anything else (digits, symbols, quotes, tags) is not quoted.
_PLAIN_PHRASE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*(?: [^\W\d_]+(?:['’-][^\W\d_]+)*)*[.!?]*")


def _words(text: str) -> int:
    return len(text.split())


def topic_reference(topic: str, generic: str) -> str:
    """What to put in "{about}": the topic itself when it is a short, plain, noun-like phrase;
    the routine's generic reference otherwise."""
    topic = topic.strip()
    if (
        _PLAIN_PHRASE.fullmatch(topic)
        and _words(topic) <= _MAX_QUOTED_WORDS
        and len(topic) <= _MAX_QUOTED_CHARS
        and topic.split()[0].lower() not in _SENTENCE_STARTERS
    ):
        return topic.rstrip(".!?")
    return generic


class LocalTextGenerator:
    """TextGenerator that never fails for a valid prompt and needs no network or key."""

    name = PROVIDER
    model = MODEL

    def generate(self, prompt: VoiceNotePrompt) -> GeneratedText:
        routine = get_routine(prompt.routine_type)
        templates = routine.text(prompt.language).templates
        lo = prompt.min_words or routine.min_words
        hi = prompt.max_words or routine.max_words
        key = f"{routine.type}|{prompt.topic}|{prompt.language}|{prompt.seed}".encode()
        rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
        about = topic_reference(prompt.topic, templates.generic_about)
        text = self._compose(templates, about, lo, hi, rng)
        return GeneratedText(text=text, model=MODEL, provider=PROVIDER, finish_reason="STOP")

    @staticmethod
    def _compose(t: Templates, about: str, lo: int, hi: int, rng: random.Random) -> str:
        opening = rng.choice(t.openings)
        topic_line = rng.choice(t.topic_lines).replace("{about}", about)
        closing = rng.choice(t.closings)
        # Aim somewhere in the middle half of the range, never past the top.
        target = rng.randint(lo + (hi - lo) // 4, hi - (hi - lo) // 4)
        fixed = _words(opening) + _words(topic_line) + _words(closing)
        # Pick body lines in random order, but speak them in catalog order: the catalog is
        # written to flow (and for breathing routines, order matters).
        chosen: list[int] = []
        count = fixed
        for i in rng.sample(range(len(t.body)), len(t.body)):
            if count >= target:
                break
            if count + _words(t.body[i]) > hi:
                continue
            chosen.append(i)
            count += _words(t.body[i])
        body = [t.body[i] for i in sorted(chosen)]
        # Two paragraphs read (and are spoken, with a longer pause) more naturally than one.
        split = (len(body) + 1) // 2
        first = [opening, topic_line, *body[:split]]
        second = [*body[split:], closing]
        return " ".join(first) + "\n\n" + " ".join(second)
