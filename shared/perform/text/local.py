"""LocalTextGenerator: the offline, keyless writer and the fallback when Gemini fails.

It assembles a note from the routine's sentence templates (opening, one topic line, body
lines, closing) in the note's language. Choices are made by a RNG seeded from
(routine, topic, language, seed), so the same request always gives the same note and the
output can be tested exhaustively.

Every note names its topic, once, and always passes the post-checks (`text_checks`):
- the topic is reduced to a speakable phrase: tags dropped, small numbers written as words
  ("my first 10k" -> "my first ten k"), only words kept, at most `ECHO_MIN_WORDS - 1` of them
  (counted with the checks' own `words_of`), so it can never be an echo of the topic;
- a noun-like phrase ("my sister's wedding", "la boda de mi hermana") fills the routine's topic
  line ("Today my focus is {about}");
- a sentence-like or shortened one ("I want to stop procrastinating") is said as a thought
  ("Here is what is on my mind today: ..."), because a template cannot paraphrase it;
- only a topic with nothing speakable in it falls back to the routine's generic reference.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import TYPE_CHECKING

from shared.perform.routines import Templates, get_routine
from shared.perform.text.base import GeneratedText
from shared.perform.text_checks import ECHO_MIN_WORDS, numbers_to_words, words_of

if TYPE_CHECKING:
    from shared.perform.prompt import VoiceNotePrompt

PROVIDER = "local"
MODEL = "template-v1"

_MAX_PHRASE_WORDS = ECHO_MIN_WORDS - 1  # one word more and the phrase could echo the topic
_MAX_WORD_CHARS = 24  # a longer "word" is a string of letters nobody would say
# A topic that starts like a sentence reads badly after "my focus is ..." / "me enfoco en ...".
_SENTENCE_STARTERS = frozenset("""i i'm im me we you it is are am was be do don't can will want need feel
    have has how why what when should please ignore tell say write let help make get
    yo estoy soy quiero necesito tengo siento me no cómo como por qué porque cuando
    debo puedo dime di escribe ignora ayúdame hazme""".split())
# A shortened phrase should not stop on a word that needs a continuation ("the", "de", "my").
_DANGLING = frozenset("""a an the and or but to of for in on at by with from my your our their his her its
    about into than that this these those as is are was be
    el la los las un una unos unas y o pero de del al en con por para mi mis tu tus su sus que
    sobre como es son""".split())
_TAG = re.compile(r"<[^<>]*>")
_DIGITS_THEN_LETTERS = re.compile(r"(\d)(?=[^\W\d_])")  # "10k" is said "ten k"
_PHRASE_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# Said when the topic is a thought rather than a thing; one is picked per note.
_THOUGHT_LINES = {
    "english": ("Here is what is on my mind today: {phrase}.",
                "One thing keeps coming back to me today: {phrase}.",
                "Today I am carrying this thought: {phrase}."),
    "spanish": ("Esto es lo que tengo en mente hoy: {phrase}.",
                "Hay algo que vuelve a mí hoy: {phrase}.",
                "Hoy llevo conmigo este pensamiento: {phrase}."),
}


def topic_phrase(topic: str, language: str) -> tuple[str, bool]:
    """The topic as a speakable phrase, and whether it reads as a thing (noun-like and whole)
    rather than a thought. ("", False) when nothing in it can be said."""
    text = numbers_to_words(_DIGITS_THEN_LETTERS.sub(r"\1 ", _TAG.sub(" ", topic)), language)
    words = [w for w in _PHRASE_WORD.findall(text) if len(w) <= _MAX_WORD_CHARS]
    whole = len(words) <= _MAX_PHRASE_WORDS and len(words_of(" ".join(words))) <= _MAX_PHRASE_WORDS
    while words and len(words_of(" ".join(words))) > _MAX_PHRASE_WORDS:
        words.pop()
    while len(words) > 1 and words[-1].lower() in _DANGLING:
        words.pop()
        whole = False
    if not words:
        return "", False
    noun_like = whole and words[0].lower() not in _SENTENCE_STARTERS
    return " ".join(words), noun_like


def _words(text: str) -> int:
    return len(text.split())


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
        text = self._compose(templates, self._topic_line(templates, prompt, rng), lo, hi, rng,
                             max_chars=prompt.max_chars or None)
        return GeneratedText(text=text, model=MODEL, provider=PROVIDER, finish_reason="STOP")

    @staticmethod
    def _topic_line(t: Templates, prompt: VoiceNotePrompt, rng: random.Random) -> str:
        phrase, noun_like = topic_phrase(prompt.topic, prompt.language)
        line = rng.choice(t.topic_lines)  # drawn either way, so one topic's notes vary alike
        if noun_like:
            return line.replace("{about}", phrase)
        if phrase:
            return rng.choice(_THOUGHT_LINES[prompt.language]).replace("{phrase}", phrase)
        return line.replace("{about}", t.generic_about)

    @staticmethod
    def _compose(t: Templates, topic_line: str, lo: int, hi: int, rng: random.Random,
                 max_chars: int | None = None) -> str:
        opening = rng.choice(t.openings)
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
        chosen.sort()
        while True:
            body = [t.body[i] for i in chosen]
            # Two paragraphs read (and are spoken, with a longer pause) more naturally than one.
            split = (len(body) + 1) // 2
            text = " ".join([opening, topic_line, *body[:split]]) + "\n\n" + " ".join([*body[split:], closing])
            # words are only an estimate of characters, and characters are what the quota holds
            if max_chars is None or len(text) <= max_chars or not chosen:
                return text
            chosen.remove(max(chosen, key=lambda i: len(t.body[i])))
