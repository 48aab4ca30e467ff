"""Post-checks and cleaning: what would sound wrong when spoken is caught or fixed."""

from __future__ import annotations

import pytest

from shared.perform.prompt import build_voice_note_prompt
from shared.perform.routines import get_routine
from shared.perform.text_checks import (
    check_voice_note,
    clean_voice_note,
    echoes_topic,
    language_share,
    number_to_words,
    numbers_to_words,
)

EN_NOTE = (
    "Good morning. I am taking a quiet moment for myself before the day begins. I notice how I feel, "
    "and I let it be. I have handled hard days before, and I can handle this one too. I choose one "
    "small step and I take it with care. My breath is slow and steady, and my mind is getting clearer. "
    "I do not need to be perfect, I only need to show up. Let's go."
)
ES_NOTE = (
    "Buenos días. Me regalo un momento de calma antes de empezar el día. Noto cómo me siento y dejo "
    "que sea tal como es. Ya he superado días difíciles, y puedo con este también. Elijo un paso "
    "pequeño y lo doy con cuidado. Mi respiración es lenta y tranquila, y mi mente se aclara. No "
    "necesito la perfección, solo necesito presentarme. Vamos allá."
)


@pytest.fixture
def en_prompt():
    return build_voice_note_prompt(get_routine("morning_motivation"), "my job interview at the big bank downtown tomorrow morning",
                                   "english",
                                   target_words=(40, 120))


@pytest.fixture
def es_prompt():
    return build_voice_note_prompt(get_routine("morning_motivation"), "mi entrevista de trabajo en el banco del centro mañana",
                                   "spanish", target_words=(40, 120))


def test_good_notes_pass(en_prompt, es_prompt):
    assert check_voice_note(EN_NOTE, en_prompt) == []
    assert check_voice_note(ES_NOTE, es_prompt) == []


def test_empty_text(en_prompt):
    assert check_voice_note("   ", en_prompt) == ["the text is empty"]


def test_too_short_and_too_long(en_prompt):
    assert any(p.startswith("too short") for p in check_voice_note("I can do this. I am ready.", en_prompt))
    assert any(p.startswith("too long") for p in check_voice_note(" ".join([EN_NOTE] * 4), en_prompt))


@pytest.mark.parametrize("snippet,problem", [
    ("\n## My note\n", "markdown heading"),
    ("\n- first point\n", "bullets"),
    ("\n2. second point\n", "bullets"),
    (" I am **strong** today. ", "asterisks"),
    ("\n```\ncode\n```\n", "code block"),
    (" <speak>hello</speak> ", "HTML or SSML"),
    (' <break time="1s"/> ', "HTML or SSML"),
    (" Visit https://example.com today. ", "link"),
    (" see www.example.org ", "link"),
    (" [pause] ", "stage direction"),
    (" (breathes in deeply) ", "stage direction"),
    (" 🌞 ", "emoji"),
    (" #motivation ", "hashtag"),
])
def test_markup_is_caught(en_prompt, snippet, problem):
    problems = check_voice_note(EN_NOTE + snippet + EN_NOTE[:60], en_prompt)
    assert any(problem in p for p in problems), problems


def test_literal_echo_of_a_long_topic_is_caught_case_and_accent_insensitively(en_prompt, es_prompt):
    echo = EN_NOTE + " Today is about MY JOB INTERVIEW AT THE BIG BANK DOWNTOWN TOMORROW, and I am ready."
    assert any("repeats the topic" in p for p in check_voice_note(echo, en_prompt))
    es_echo = ES_NOTE + " Hoy pienso en Mi Entrevista De Trabajo En El Banco Del Centro."
    assert any("repeats the topic" in p for p in check_voice_note(es_echo, es_prompt))
    # paraphrase is fine, and so is naming part of it
    assert check_voice_note(EN_NOTE + " Today the interview at the bank is my focus.", en_prompt) == []
    assert check_voice_note(EN_NOTE + " Today my job interview at the big bank is my focus.", en_prompt) == []


@pytest.mark.parametrize("note,topic", [
    ("I am ready for my exam today.", "my exam"),
    ("I am grateful for my sister's wedding.", "my sister's wedding"),
    ("I am grateful for my sister’s wedding.", "my sister's wedding"),
    ("Hoy agradezco la boda de mi hermana.", "la boda de mi hermana"),
    ("Today my focus is my job interview at the bank tomorrow.", "my job interview at the bank tomorrow"),
])
def test_a_short_topic_named_in_the_note_is_not_an_echo(note, topic):
    assert not echoes_topic(note, topic)


def test_eight_words_of_a_long_topic_said_back_are_an_echo():
    topic = "I keep putting off the paperwork for my new flat and it stresses me"
    assert echoes_topic("Honestly, the paperwork for my new flat and it stresses me.", topic)
    assert not echoes_topic("Honestly, the paperwork for my new flat stresses me.", topic)


def test_wrong_language_is_caught(en_prompt, es_prompt):
    assert "does not read as Spanish" in check_voice_note(EN_NOTE, es_prompt)
    assert "does not read as English" in check_voice_note(ES_NOTE, en_prompt)
    assert language_share("Hola", "spanish") is None  # too little text to tell


def test_digits_are_flagged_unless_cleaned(en_prompt):
    text = EN_NOTE + " I take 3 deep breaths and count to 10."
    assert any("digits" in p for p in check_voice_note(text, en_prompt))
    cleaned = clean_voice_note(text, "english")
    assert "three deep breaths and count to ten" in cleaned
    assert check_voice_note(cleaned, en_prompt) == []
    # what cannot be converted cheaply stays flagged
    assert any("digits" in p for p in check_voice_note(clean_voice_note(EN_NOTE + " At 9:30 I start.", "english"),
                                                        en_prompt))


def test_clean_removes_cosmetic_markup_but_keeps_the_words():
    raw = ('# Morning boost\n\n* **Breathe in** slowly.\n- I am _ready_ 🌞\n'
           '<speak>Smile <break time="1s"/> now.</speak> [pause]\n```')
    assert clean_voice_note(raw) == "Breathe in slowly.\nI am ready\nSmile now."


def test_clean_keeps_links_for_the_check_to_reject(en_prompt):
    cleaned = clean_voice_note(EN_NOTE + " More at https://example.com", "english")
    assert "https://example.com" in cleaned
    assert "contains a link" in check_voice_note(cleaned, en_prompt)


def test_clean_unwraps_a_quoted_answer():
    assert clean_voice_note("“I am here.”") == "I am here."
    assert clean_voice_note('"A" and "B"') == '"A" and "B"'


@pytest.mark.parametrize("n,en,es", [
    (0, "zero", "cero"), (1, "one", "uno"), (15, "fifteen", "quince"), (16, "sixteen", "dieciséis"),
    (21, "twenty-one", "veintiuno"), (22, "twenty-two", "veintidós"), (40, "forty", "cuarenta"),
    (47, "forty-seven", "cuarenta y siete"), (100, "one hundred", "cien"),
    (101, "one hundred and one", "ciento uno"), (500, "five hundred", "quinientos"),
    (999, "nine hundred and ninety-nine", "novecientos noventa y nueve"),
])
def test_number_to_words(n, en, es):
    assert number_to_words(n, "english") == en
    assert number_to_words(n, "spanish") == es


def test_spanish_numbers_agree_with_the_noun():
    assert numbers_to_words("1 hora, 1 día, 21 días, 1 vez, 200 personas y 1", "spanish") == \
        "una hora, un día, veintiún días, una vez, doscientas personas y uno"
    with pytest.raises(ValueError):
        number_to_words(1000, "english")
