"""compose_voice_note: generate → clean → check, one retry, then the local composer."""

from __future__ import annotations

import pytest

from shared.perform.compose import ComposedNote, compose_voice_note
from shared.perform.prompt import build_voice_note_prompt
from shared.perform.routines import get_routine
from shared.perform.text.gemini import GeminiTextGenerator
from shared.perform.text.local import LocalTextGenerator
from shared.perform.text_checks import check_voice_note, language_share
from shared.providers.resilience import CircuitBreaker
from tests.fakes.gemini import default_reply
from tests.text import KEY

TOPIC = "my job interview at the bank tomorrow"
LONG_TOPIC = "my job interview at the big bank downtown tomorrow morning"


@pytest.fixture
def gemini(server):
    return GeminiTextGenerator(KEY, base_url=server[1], timeout_s=5, retry_attempts=3, retry_initial_delay_s=0.01,
                               retry_max_delay_s=0.02, retry_jitter_s=0,
                               breaker=CircuitBreaker("compose-test", failure_threshold=100))


@pytest.fixture
def local():
    return LocalTextGenerator()


def prompt_for(language="english", routine="morning_motivation", topic=TOPIC):
    return build_voice_note_prompt(get_routine(routine), topic, language)


def assert_speakable(note: ComposedNote, prompt) -> None:
    assert check_voice_note(note.text, prompt) == [], note.text


def test_good_first_draft_is_used(fake, gemini, local):
    p = prompt_for()
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.model, note.attempts, note.fell_back, note.problems) == \
        ("gemini", "gemini-2.5-flash", 1, False, [])
    assert note.output_tokens
    assert_speakable(note, p)


def test_fixable_markup_and_digits_are_cleaned_not_retried(fake, gemini, local):
    p = prompt_for()
    fake.reply_with(fn=lambda body: "**" + default_reply(body) + "** I take 3 deep breaths.\n- And I smile.")
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.attempts, note.fell_back) == ("gemini", 1, False)
    assert "*" not in note.text and "three deep breaths" in note.text and "- And" not in note.text
    assert_speakable(note, p)


def test_a_bad_draft_is_retried_once_with_feedback(fake, gemini, local):
    p = prompt_for()
    fake.reply_with(fn=lambda body: "Too short." if len(fake.requests) == 1 else default_reply(body))
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.attempts, note.fell_back) == ("gemini", 2, False)
    assert note.problems and "too short" in note.problems[0]
    first, second = fake.requests
    assert second.system_text == first.system_text  # the instructions never change
    assert "previous draft was rejected" in second.user_text and "too short" in second.user_text
    assert TOPIC not in " ".join(note.problems)  # problems never quote the topic


def test_two_bad_drafts_fall_back_to_local(fake, gemini, local):
    p = prompt_for()
    fake.answer_next(5, "markup")  # has a link: the cleaner cannot fix it
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.model, note.attempts, note.fell_back) == ("local", "template-v1", 2, True)
    assert fake.calls == 2
    assert any("contains a link" in problem for problem in note.problems)
    assert_speakable(note, p)


def test_echoed_topic_is_retried_then_falls_back(fake, gemini, local):
    p = prompt_for(topic=LONG_TOPIC)
    fake.reply_with(fn=lambda body: default_reply(body) + f" Today I face {LONG_TOPIC}.")
    note = compose_voice_note(gemini, local, p)
    assert note.fell_back and note.attempts == 2
    assert any("repeats the topic" in problem for problem in note.problems)
    assert LONG_TOPIC not in note.text
    assert_speakable(note, p)


@pytest.mark.parametrize("language,routine,topic", [
    ("english", "gratitude", "my sister's wedding"),
    ("spanish", "gratitude", "la boda de mi hermana"),
    ("english", "morning_motivation", "my first 10k on Sunday"),
    ("english", "focus_reset", "I want to stop procrastinating on my thesis"),
])
def test_the_local_composer_as_the_writer_writes_once_without_complaint(local, caplog, language, routine, topic):
    p = prompt_for(language, routine, topic)
    with caplog.at_level("INFO", logger="shared.perform.compose"):
        note = compose_voice_note(local, LocalTextGenerator(), p)
    assert (note.provider, note.attempts, note.fell_back, note.problems) == ("local", 0, False, [])
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text
    assert_speakable(note, p)


@pytest.mark.parametrize("kind", ["blocked_prompt", "safety", "empty", "recitation"])
def test_blocked_twice_falls_back_after_one_retry(fake, gemini, local, kind):
    p = prompt_for()
    fake.answer_next(2, kind)
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.attempts, note.fell_back) == ("local", 2, True)
    assert fake.calls == 2
    assert all("PROVIDER_REJECTED" in problem for problem in note.problems)
    assert_speakable(note, p)


def test_blocked_once_then_fine_uses_the_retry(fake, gemini, local):
    fake.answer_next(1, "safety")
    note = compose_voice_note(gemini, local, prompt_for())
    assert (note.provider, note.attempts, note.fell_back) == ("gemini", 2, False)


def test_provider_unavailable_falls_back_without_a_second_round(fake, gemini, local):
    p = prompt_for()
    fake.fail_next(10, 503)
    note = compose_voice_note(gemini, local, p)
    assert (note.provider, note.attempts, note.fell_back) == ("local", 1, True)
    assert fake.calls == 3  # only the SDK's own attempts
    assert "PROVIDER_UNAVAILABLE" in note.problems[0]
    assert_speakable(note, p)


def test_open_circuit_falls_back_immediately(fake, server, local):
    breaker = CircuitBreaker("compose-open", failure_threshold=1, reset_timeout_s=60)
    breaker.record_failure()
    gen = GeminiTextGenerator(KEY, base_url=server[1], breaker=breaker)
    note = compose_voice_note(gen, local, prompt_for())
    assert note.fell_back and note.provider == "local" and fake.calls == 0


def test_bad_key_falls_back_without_retry(fake, server, local):
    gen = GeminiTextGenerator("wrong", base_url=server[1], breaker=CircuitBreaker("compose-auth"))
    note = compose_voice_note(gen, local, prompt_for())
    assert (note.provider, note.attempts, note.fell_back) == ("local", 1, True)
    assert fake.calls == 1


def test_a_crashing_adapter_still_yields_a_note(local):
    class Broken:
        name, model = "broken", "x"

        def generate(self, prompt):
            raise RuntimeError("bug")

    note = compose_voice_note(Broken(), local, prompt_for())
    assert note.fell_back and note.provider == "local"


def test_truncated_draft_is_not_used(fake, gemini, local):
    fake.answer_next(2, "max_tokens")
    note = compose_voice_note(gemini, local, prompt_for())
    assert note.fell_back
    assert any("cut off" in problem for problem in note.problems)


@pytest.mark.parametrize("routine", ["gratitude", "calm_breathing", "study_pep_talk"])
def test_spanish_settings_give_spanish_text_from_gemini_and_local(fake, gemini, local, routine):
    p = prompt_for("spanish", routine, "mi examen de matemáticas")
    from_gemini = compose_voice_note(gemini, local, p)
    assert from_gemini.provider == "gemini" and not from_gemini.fell_back
    fake.answer_next(2, "empty")
    from_local = compose_voice_note(gemini, local, p)
    assert from_local.provider == "local"
    for note in (from_gemini, from_local):
        assert language_share(note.text, "spanish") > 0.8, note.text
        assert_speakable(note, p)


def test_english_reply_to_a_spanish_request_is_rejected(fake, gemini, local):
    p = prompt_for("spanish")
    fake.reply_with(fn=lambda body: default_reply({**body, "systemInstruction": {"parts": [{"text": ""}]}}))
    note = compose_voice_note(gemini, local, p)
    assert note.fell_back and any("does not read as Spanish" in problem for problem in note.problems)


def test_local_only_configuration_does_not_count_as_a_fallback(local):
    p = prompt_for()
    note = compose_voice_note(local, local, p)
    assert (note.provider, note.attempts, note.fell_back, note.problems) == ("local", 0, False, [])


