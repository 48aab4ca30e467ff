"""Post-checks and cleaning for generated voice-note text.

Whatever the writer returns is spoken by a TTS engine in the user's own voice and billed per
character, so the text must be plain speech: no markup (the engine would read "asterisk" or
an SSML tag would change the voice), numbers as words (engines read "1" differently per
language), the right language, a sane length, and not a parrot of the topic.

`clean_voice_note` fixes what is cheap and safe to fix (emphasis markers, bullets, headings,
tags, emoji, small numbers); `check_voice_note` lists what is still wrong. The problem
strings never quote the text or the topic: they go to logs and back to the LLM on a retry.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # avoid an import cycle at runtime; only the attributes are used
    from shared.perform.prompt import VoiceNotePrompt

#: A run of this many consecutive topic words said back verbatim is parroting: the check exists
#: to catch a long topic pasted into the note. A shorter topic is a name ("my sister's wedding",
#: "la boda de mi hermana"), and naming it is exactly what a note about it should do.
ECHO_MIN_WORDS = 8

# ---------------------------------------------------------------- numbers to words (0-999)

_EN_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
             "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

_ES_UNITS = ("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce "
             "quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés "
             "veinticuatro veinticinco veintiséis veintisiete veintiocho veintinueve").split()
_ES_TENS = "_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
_ES_HUNDREDS = ("_ ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos "
                "ochocientos novecientos").split()


def number_to_words(n: int, language: str, *, feminine: bool = False, before_noun: bool = False) -> str:
    """0-999 in words. Spanish 'uno' agrees with a following noun: 'un día', 'una hora'."""
    if not 0 <= n <= 999:
        raise ValueError("only 0-999 are supported")
    if language == "spanish":
        return _es(n, feminine=feminine, before_noun=before_noun)
    return _en(n)


def _en(n: int) -> str:
    if n < 20:
        return _EN_UNITS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_UNITS[unit]}" if unit else "")
    hundreds, rest = divmod(n, 100)
    return f"{_EN_UNITS[hundreds]} hundred" + (f" and {_en(rest)}" if rest else "")


def _es(n: int, *, feminine: bool, before_noun: bool) -> str:
    if n == 100:
        return "cien"
    if n >= 100:
        hundreds, rest = divmod(n, 100)
        head = _ES_HUNDREDS[hundreds]
        if feminine and hundreds >= 2:
            head = head.replace("ientos", "ientas")  # doscientas horas
        return head + (f" {_es(rest, feminine=feminine, before_noun=before_noun)}" if rest else "")
    if n < 30:
        word = _ES_UNITS[n]
    else:
        tens, unit = divmod(n, 10)
        word = _ES_TENS[tens] + (f" y {_ES_UNITS[unit]}" if unit else "")
    if word.endswith("uno") and (feminine or before_noun):
        word = word[:-3] + ("una" if feminine else "ún" if word.endswith("veintiuno") else "un")
    return word


# A bare integer of one to three digits, not part of a larger number, time, decimal, ordinal
# ("3rd") or percentage: those are left alone and flagged, since reading them right needs more
# than a lookup table.
_SMALL_NUMBER = re.compile(r"(?<![\w.,:/%-])(\d{1,3})(?![\w%]|[.,:/]\d)(\s+([^\W\d_]+))?")


# Nouns that break the "-a is feminine" rule of thumb, among those a voice note might count.
_ES_MASCULINE_A = frozenset("día días mapa mapas problema problemas programa programas sistema sistemas "
                            "tema temas idioma idiomas planeta planetas clima".split())
_ES_FEMININE_OTHER = frozenset("vez veces noche noches tarde tardes parte partes clase clases mente "
                               "mujer mujeres razón razones lección lecciones canción canciones sesión "
                               "sesiones respiración respiraciones meditación luz paz flor flores".split())


def _is_feminine_es(word: str) -> bool:
    w = word.lower()
    if w in _ES_MASCULINE_A:
        return False
    return w in _ES_FEMININE_OTHER or w.endswith(("a", "as"))


def numbers_to_words(text: str, language: str) -> str:
    def repl(m: re.Match[str]) -> str:
        n = int(m.group(1))
        following = m.group(3) or ""
        feminine = language == "spanish" and _is_feminine_es(following)
        words = number_to_words(n, language, feminine=feminine, before_noun=bool(following))
        return words + (m.group(2) or "")
    return _SMALL_NUMBER.sub(repl, text)


# ---------------------------------------------------------------- markup

_CODE_FENCE = re.compile(r"```|~~~")
_BACKTICK = re.compile(r"`")
_HEADING = re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+\S")
_BULLET = re.compile(r"(?m)^[ \t]*(?:[-*+•▪‣·]|\d{1,2}[.)])[ \t]+")
_EMPHASIS = re.compile(r"\*|(?<![\w])_{1,2}(?=\w)|(?<=\w)_{1,2}(?![\w])")
_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")
_URL = re.compile(r"(?i:\b(?:https?://|www\.)\S+)|\b[\w-]+\.(?:com|org|net|io|ai|es|co|app|dev)\b(?:/\S*)?")
_STAGE_DIRECTION = re.compile(
    r"\[[^\]\n]{1,60}\]"
    r"|(?i:\((?:pause|pauses|breathe|breathes|breathing|sigh|sighs|inhale|inhales|exhale|exhales|laughs?"
    r"|smiles?|music|soft music|pausa|respira|suspira|inhala|exhala|ríe|sonríe|música)\b[^)\n]{0,40}\))"
)
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\u2B00-\u2BFF\uFE0F\u200D\u20E3]"
)
_DIGIT = re.compile(r"\d")

_MARKUP_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_CODE_FENCE, "contains a code block"),
    (_HEADING, "contains a markdown heading"),
    (_BULLET, "contains list bullets or numbering"),
    (_EMPHASIS, "contains asterisks or underscores (markdown emphasis)"),
    (_BACKTICK, "contains backticks"),
    (_TAG, "contains HTML or SSML tags"),
    (_URL, "contains a link"),
    (_STAGE_DIRECTION, "contains a bracketed stage direction"),
    (_HASHTAG, "contains a hashtag"),
    (_EMOJI, "contains emoji"),
)


def markup_problems(text: str) -> list[str]:
    return [message for pattern, message in _MARKUP_RULES if pattern.search(text)]


# ---------------------------------------------------------------- language sanity

# Frequent function words that are not also frequent words of the other language
# (no "a", "no", "me", "he", "son"): a cheap but reliable signal on a hundred words.
_EN_STOP = frozenset("""the and you your is are to of it that this with for my i i'm be will can
    have has not just what when now today all so at on was were am do don't it's let let's
    there they we our from into more than one every""".split())
_ES_STOP = frozenset("""el la los las de que y en un una es por para con mi mis tu te lo se del al
    hoy más pero como estoy eres soy muy yo sin sobre también cada todo esta este está ahora
    cuando donde porque tengo puedo voy""".split())
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def language_share(text: str, language: str) -> float | None:
    """Share of stop-word hits that belong to `language`, or None when too few to tell."""
    words = [w.lower() for w in _WORD.findall(text)]
    en = sum(w in _EN_STOP for w in words)
    es = sum(w in _ES_STOP for w in words)
    if en + es < 6:
        return None
    return (en if language == "english" else es) / (en + es)


# ---------------------------------------------------------------- echo

#: a word as people count them: letters and digits, with inner apostrophes ("sister's") kept
_COUNTED_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words_of(text: str) -> list[str]:
    """The words of `text`, folded (case, accents, apostrophe style) for comparison. The local
    composer counts a topic's words with this same function, so the two always agree."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _COUNTED_WORD.findall(text)


def echoes_topic(text: str, topic: str) -> bool:
    """True when `ECHO_MIN_WORDS` consecutive words of the topic come back verbatim."""
    topic_words = words_of(topic)
    n = ECHO_MIN_WORDS
    if len(topic_words) < n:
        return False
    note_words = words_of(text)
    note_runs = {tuple(note_words[i:i + n]) for i in range(len(note_words) - n + 1)}
    return any(tuple(topic_words[i:i + n]) in note_runs for i in range(len(topic_words) - n + 1))


# ---------------------------------------------------------------- public API

def clean_voice_note(text: str, language: str | None = None) -> str:
    """Remove markup that is safe to remove and, when the language is known, write small
    numbers as words. Links, big numbers and anything ambiguous are left for the check."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _unquote(text.strip())
    lines = []
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            continue  # a fence line such as ``` or ```text; the lines inside are kept
        if _HEADING.match(line):
            continue  # a title line: spoken, it would sound like a label
        lines.append(_BULLET.sub("", line, count=1))
    text = "\n".join(lines)
    text = _TAG.sub(" ", text)
    text = _STAGE_DIRECTION.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    text = _BACKTICK.sub("", text)
    text = _EMOJI.sub("", text)
    if language:
        text = numbers_to_words(text, language)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return _unquote(text)


def _unquote(text: str) -> str:
    """Models sometimes wrap the whole answer in quotes; those quotes are not part of the note."""
    closing = {'"': '"', "“": "”", "«": "»"}.get(text[:1])
    if len(text) < 2 or closing is None or text[-1] != closing:
        return text
    inner = text[1:-1]
    if text[0] in inner or closing in inner:  # '"A" and "B"' is not a wrapped answer
        return text
    return inner.strip()


def check_voice_note(text: str, prompt: VoiceNotePrompt) -> list[str]:
    """Problems that make `text` unfit to be spoken; an empty list means it is fine."""
    text = (text or "").strip()
    if not text:
        return ["the text is empty"]
    problems: list[str] = []
    if len(text) < prompt.min_chars:
        problems.append(f"too short: {len(text)} characters, at least {prompt.min_chars} expected")
    if len(text) > prompt.max_chars:
        problems.append(f"too long: {len(text)} characters, at most {prompt.max_chars} allowed")
    problems.extend(markup_problems(text))
    if _DIGIT.search(text):
        problems.append("contains digits; numbers must be written as words")
    if prompt.topic and echoes_topic(text, prompt.topic):
        problems.append("repeats the topic word for word instead of paraphrasing it")
    share = language_share(text, prompt.language)
    if share is not None and share < 0.6:
        problems.append(f"does not read as {prompt.language.capitalize()}")
    return problems
