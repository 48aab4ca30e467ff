"""The ElevenLabs adapter against the fake ElevenLabs, over real HTTP on loopback.

What is checked is what an operator or a user would notice: voices that do (or do not) exist at
the provider afterwards, how many requests reached it, which error the domain gets, how long a
call waited, and that the API key shows up nowhere."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import Response

from shared.audio.codec import probe
from shared.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderUnavailable,
    VoiceLimitReached,
    VoiceNotFound,
)
from shared.providers.resilience import CircuitBreaker, CircuitOpenError, RetryPolicy
from shared.providers.voice.base import RemoteVoice, Subscription, VoiceProvider, VoiceSettings
from shared.providers.voice.elevenlabs import (
    ElevenLabsVoiceProvider,
    RequestOutcomeUnknown,
    Timeouts,
    reset_breakers,
    shared_breaker,
)
from tests.fakes.elevenlabs import (
    SECONDS_PER_CHARACTER,
    FakeElevenLabs,
    FakeElevenLabsControl,
    Fault,
    create_app,
    render_speech,
)
from tests.fakes.server import free_port, serve

KEY = "sk_live_5e2b9c0d7a4f4e1b8c3d6a9f0e7b2c41"  # distinctive, to look for in messages
ATTEMPTS = 3
SAMPLE = render_speech("this is a short sample of my speaking voice")
REPO_ROOT = Path(__file__).resolve().parents[2]


def fast_retries(**overrides) -> RetryPolicy:
    return RetryPolicy(**{"attempts": ATTEMPTS, "base_delay_s": 0.01, "max_delay_s": 0.05, **overrides})


@pytest.fixture(scope="module")
def server():
    state = FakeElevenLabs(KEY, voice_limit=3)
    with serve(create_app(state)) as url:
        yield state, url


@pytest.fixture
def fake(server) -> FakeElevenLabs:
    state, _ = server
    state.wait_idle()
    state.reset()
    yield state
    state.wait_idle()  # a request the adapter gave up on must not land in the next test


@pytest.fixture
def base_url(server) -> str:
    return server[1]


@pytest.fixture
def make_provider(base_url):
    made: list[ElevenLabsVoiceProvider] = []

    def make(api_key: str = KEY, **overrides) -> ElevenLabsVoiceProvider:
        options = {
            "base_url": base_url,
            "retry_policy": fast_retries(),
            # A fresh breaker per test; a high threshold unless a test is about the breaker.
            "breaker": CircuitBreaker("elevenlabs", failure_threshold=100, reset_timeout_s=30),
            "timeouts": Timeouts(connect_s=1.0, read_s=2.0, synthesis_read_s=5.0),
            **overrides,
        }
        provider = ElevenLabsVoiceProvider(api_key, **options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider) -> ElevenLabsVoiceProvider:
    return make_provider()


class Outcomes:
    """An on_call hook that remembers (operation, outcome) pairs."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, operation: str, outcome: str, duration_s: float) -> None:
        assert duration_s >= 0
        self.seen.append((operation, outcome))

    def of(self, operation: str) -> list[str]:
        return [outcome for op, outcome in self.seen if op == operation]


def invoke(provider: ElevenLabsVoiceProvider, operation: str, voice_id: str = "no-such-voice"):
    calls = {
        "create_voice": lambda: provider.create_voice("nv-test", SAMPLE),
        "rename_voice": lambda: provider.rename_voice(voice_id, "nv-renamed"),
        "delete_voice": lambda: provider.delete_voice(voice_id),
        "list_voices": lambda: list(provider.list_voices()),
        "synthesize": lambda: provider.synthesize("Hello there.", voice_id, VoiceSettings()),
        "subscription": provider.subscription,
    }
    return calls[operation]()


def needs_ffprobe():
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")


# --- happy paths --------------------------------------------------------------------------------


def test_the_adapter_implements_the_port(provider):
    assert isinstance(provider, VoiceProvider)
    assert provider.name == "elevenlabs" and provider.model_id == "eleven_turbo_v2_5"


def test_create_voice_uploads_the_sample_name_and_labels(fake, provider):
    voice_id = provider.create_voice("nv-user-42", SAMPLE, {"owner": "user-42", "lang": "en"})

    voice = fake.voice(voice_id)
    assert voice is not None and voice.category == "cloned"
    assert voice.name == "nv-user-42"
    assert voice.labels == {"owner": "user-42", "lang": "en"}
    assert voice.sample_sizes == [len(SAMPLE)]  # the bytes arrived whole
    assert voice.remove_background_noise is False
    assert fake.created_total == 1


def test_rename_voice_changes_the_name_at_the_provider(fake, provider):
    voice_id = provider.create_voice("nv-old", SAMPLE)
    provider.rename_voice(voice_id, "nv-new")
    assert fake.voice(voice_id).name == "nv-new"


def test_list_voices_follows_pagination_to_the_end(fake, make_provider):
    fake.configure(voice_limit=50)
    provider = make_provider(list_page_size=4)
    for i in range(6):
        fake.seed_voice(f"other-app-{i}")
    for i in range(5):
        provider.create_voice(f"nv-{i}", SAMPLE, {"n": str(i)})
    expected = fake.voices  # 3 premade + 6 foreign + 5 ours

    listed = list(provider.list_voices())

    assert [v.voice_id for v in listed] == [v.voice_id for v in expected]
    assert fake.call_count("list_voices") == math.ceil(len(expected) / 4) == 4
    assert RemoteVoice(expected[0].voice_id, "Rachel", "premade", {}) in listed
    assert next(v for v in listed if v.name == "nv-3").labels == {"n": "3"}


def test_list_voices_is_complete_when_a_voice_is_deleted_between_pages(fake, make_provider):
    fake.configure(voice_limit=50)
    for i in range(9):
        fake.seed_voice(f"v-{i}")
    provider = make_provider(list_page_size=5)
    pages = provider.list_voices()
    first_page = [next(pages) for _ in range(5)]
    fake_ids = [v.voice_id for v in fake.voices]
    provider.delete_voice(first_page[-1].voice_id)  # the page's last voice is the cursor

    rest = list(pages)

    assert [v.voice_id for v in first_page + rest] == fake_ids


def test_delete_voice_removes_it_and_a_second_delete_says_not_found(fake, provider):
    voice_id = provider.create_voice("nv-doomed", SAMPLE)
    provider.delete_voice(voice_id)
    assert fake.voice(voice_id) is None and fake.deleted_total == 1

    with pytest.raises(VoiceNotFound) as caught:
        provider.delete_voice(voice_id)
    assert caught.value.http_status == 404 and voice_id in caught.value.message


def test_synthesize_returns_an_mp3_whose_length_follows_the_text(fake, provider):
    needs_ffprobe()
    voice_id = provider.create_voice("nv-speaker", SAMPLE)
    short_text = "Hello from New Visions."
    long_text = "Hello from New Visions. This note is a good deal longer than the first one."

    short = provider.synthesize(short_text, voice_id, VoiceSettings())
    long = provider.synthesize(long_text, voice_id, VoiceSettings())

    short_info, long_info = probe(short.audio), probe(long.audio)
    assert short_info.codec_name == "mp3" and short_info.sample_rate == 44100
    assert short_info.duration_s == pytest.approx(len(short_text) * SECONDS_PER_CHARACTER, abs=0.1)
    assert long_info.duration_s == pytest.approx(len(long_text) * SECONDS_PER_CHARACTER, abs=0.1)
    assert short.model_id == "eleven_turbo_v2_5" and short.characters == len(short_text)


def test_synthesis_cost_comes_from_the_provider_header(fake, make_provider):
    text = "Twenty-one characters"  # 21: turbo bills half, rounded up
    turbo = make_provider()
    multilingual = make_provider(model_id="eleven_multilingual_v2")
    voice_id = turbo.create_voice("nv-cost", SAMPLE)

    assert turbo.synthesize(text, voice_id, VoiceSettings()).character_cost == 11
    assert multilingual.synthesize(text, voice_id, VoiceSettings()).character_cost == 21
    assert fake.character_count == 32


def test_character_cost_is_none_when_the_provider_does_not_say(make_provider):
    # A minimal provider that answers audio without a character-cost header.
    app = FastAPI()

    @app.post("/v1/text-to-speech/{voice_id}")
    def tts(voice_id: str) -> Response:
        return Response(render_speech("hi"), media_type="audio/mpeg")

    with serve(app) as url:
        synthesis = make_provider(base_url=url).synthesize("hi", "any", VoiceSettings())
    assert synthesis.character_cost is None and synthesis.audio


@pytest.mark.parametrize("asked, sent", [(3.0, 1.2), (0.1, 0.7), (1.1, 1.1)])
def test_speed_is_clamped_to_what_the_provider_accepts(fake, provider, asked, sent):
    voice_id = provider.create_voice("nv-speed", SAMPLE)
    provider.synthesize("Quickly now.", voice_id, VoiceSettings(speed=asked))
    tts_call = [c for c in fake.calls if c.operation == "synthesize"][-1]
    assert tts_call.details["voice_settings"]["speed"] == pytest.approx(sent)
    assert tts_call.details["model_id"] == "eleven_turbo_v2_5"


def test_subscription_reflects_the_account(fake, provider):
    fake.seed_voice("someone-elses-clone")
    voice_id = provider.create_voice("nv-mine", SAMPLE)
    provider.synthesize("Counting characters.", voice_id, VoiceSettings())

    assert provider.subscription() == Subscription(
        voice_limit=3, voice_slots_used=2, character_count=10, character_limit=fake.character_limit,
    )


# --- the provider's own refusals -----------------------------------------------------------------


def test_the_fourth_voice_with_a_limit_of_three_is_refused(fake, provider):
    for i in range(3):
        provider.create_voice(f"nv-{i}", SAMPLE)

    with pytest.raises(VoiceLimitReached) as caught:
        provider.create_voice("nv-3", SAMPLE)

    assert "3 / 3" in caught.value.message
    assert fake.call_count("create_voice") == 4  # refused at once, not retried
    assert fake.created_total == 3 and fake.max_voices_seen == 3


def test_foreign_clones_use_slots_and_premade_voices_do_not(fake, provider):
    fake.seed_voice("another-apps-clone")
    provider.create_voice("nv-a", SAMPLE)
    provider.create_voice("nv-b", SAMPLE)
    with pytest.raises(VoiceLimitReached):
        provider.create_voice("nv-c", SAMPLE)
    assert len(fake.voice_names("premade")) == 3


def test_quota_exceeded_and_invalid_key_are_both_401_but_different_errors(fake, make_provider):
    provider = make_provider()
    voice_id = provider.create_voice("nv-quota", SAMPLE)
    fake.configure(character_limit=5)

    with pytest.raises(ProviderQuotaExceeded) as quota:
        provider.synthesize("This text needs more than five credits.", voice_id, VoiceSettings())
    with pytest.raises(ProviderAuthError) as auth:
        make_provider(api_key="sk_wrong_key").subscription()

    assert quota.value.http_status == auth.value.http_status == 401
    assert quota.value.provider_code == "quota_exceeded" and "5 credits" not in auth.value.message
    assert not isinstance(quota.value, ProviderAuthError)
    assert fake.call_count("synthesize") == 1 and fake.call_count("subscription") == 1  # no retries


def test_synthesis_with_a_voice_that_is_gone_raises_voice_not_found(fake, provider):
    with pytest.raises(VoiceNotFound) as caught:
        provider.synthesize("Anyone there?", "evictedVoice00000000", VoiceSettings())
    assert caught.value.http_status == 400  # the provider says 400 here, 404 on delete


def test_a_404_for_a_wrong_path_is_not_mistaken_for_a_missing_voice(fake, make_provider, base_url):
    provider = make_provider(base_url=base_url + "/misconfigured")
    with pytest.raises(ProviderRejected) as caught:
        provider.delete_voice("someVoice")
    assert not isinstance(caught.value, VoiceNotFound)  # would trigger a pointless re-clone
    assert "Not Found" in caught.value.message


def test_the_providers_validation_errors_are_rejections_naming_the_field(fake, provider):
    with pytest.raises(ProviderRejected) as caught:
        provider.create_voice("   ", SAMPLE)  # the provider wants a real name
    assert caught.value.http_status == 422
    assert "name" in caught.value.message and "Field required" in caught.value.message
    assert fake.created_total == 0


# --- every error code maps to its class -----------------------------------------------------------

REFUSALS = [
    ("create_voice", Fault(400, "voice_limit_reached"), VoiceLimitReached),
    ("synthesize", Fault(400, "voice_not_found"), VoiceNotFound),
    ("delete_voice", Fault(404, "voice_not_found"), VoiceNotFound),
    ("rename_voice", Fault(404, "voice_not_found", style="code"), VoiceNotFound),
    ("synthesize", Fault(401, "quota_exceeded"), ProviderQuotaExceeded),
    ("synthesize", Fault(401, "quota_exceeded", style="code"), ProviderQuotaExceeded),
    ("subscription", Fault(401, "invalid_api_key"), ProviderAuthError),
    ("list_voices", Fault(401, "invalid_api_key", style="code"), ProviderAuthError),
    ("rename_voice", Fault(422, "name", "Field required", style="validation"), ProviderRejected),
    ("list_voices", Fault(400, message="Something about this request is wrong", style="string"),
     ProviderRejected),
    ("create_voice", Fault(400, "invalid_file", "The audio could not be read"), ProviderRejected),
]


@pytest.mark.parametrize("operation, fault, expected", REFUSALS,
                         ids=[f"{op}-{f.status}-{f.code}-{f.style}" for op, f, _ in REFUSALS])
def test_refusals_map_to_their_error_and_are_not_retried(fake, provider, operation, fault, expected):
    fake.fail_next(operation, fault)

    with pytest.raises(expected) as caught:
        invoke(provider, operation)

    error = caught.value
    assert type(error) is expected
    assert not error.retryable or expected is VoiceLimitReached
    assert error.http_status == fault.status and error.provider == "elevenlabs"
    assert fault.resolved_message() in error.message
    assert fake.call_count(operation) == 1


OUTAGES = [
    ("subscription", Fault(500)),
    ("synthesize", Fault(502)),
    ("list_voices", Fault(503, style="html")),
    ("rename_voice", Fault(429, "rate_limit_exceeded")),
    ("delete_voice", Fault(429, "system_busy", style="code")),
    ("synthesize", Fault(429, "concurrent_limit_exceeded")),
    ("create_voice", Fault(429, "too_many_concurrent_requests")),
    ("create_voice", Fault(503)),
]


@pytest.mark.parametrize("operation, fault", OUTAGES,
                         ids=[f"{op}-{f.status}-{f.code}-{f.style}" for op, f in OUTAGES])
def test_outages_are_retried_then_reported_unavailable(fake, make_provider, operation, fault):
    provider = make_provider(rate_limit_wait_s=0.01)
    fake.fail_next(operation, *[fault] * ATTEMPTS)

    with pytest.raises(ProviderUnavailable) as caught:
        invoke(provider, operation)

    assert caught.value.retryable and caught.value.http_status == fault.status
    assert fake.call_count(operation) == ATTEMPTS
    if fault.style == "html":
        assert "temporarily unable" in caught.value.message  # a readable excerpt of the page
    else:
        assert caught.value.provider_code == fault.resolved_code()


# --- retries ---------------------------------------------------------------------------------------


def test_two_5xx_then_success_creates_exactly_one_voice(fake, make_provider):
    outcomes = Outcomes()
    provider = make_provider(on_call=outcomes)
    fake.fail_next("create_voice", Fault(503), Fault(500))

    voice_id = provider.create_voice("nv-persistent", SAMPLE)

    assert fake.voice(voice_id).name == "nv-persistent"
    assert fake.created_total == 1 and fake.voice_names() == ["nv-persistent"]
    assert fake.call_count("create_voice") == 3
    assert outcomes.of("create_voice") == ["service_unavailable", "internal_server_error", "ok"]


def test_read_timeouts_are_retried_then_reported_unavailable(fake, make_provider):
    provider = make_provider(timeouts=Timeouts(connect_s=1.0, read_s=0.2, synthesis_read_s=0.2))
    voice_id = provider.create_voice("nv-slow", SAMPLE)
    fake.set_latency(0.6, "synthesize")

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        provider.synthesize("Take your time.", voice_id, VoiceSettings())

    assert caught.value.provider_code == "timeout"
    assert fake.call_count("synthesize") == ATTEMPTS
    assert time.monotonic() - started < 0.2 * ATTEMPTS + 0.5  # gave up on each, did not wait it out


def test_synthesis_waits_longer_than_other_calls(fake, make_provider):
    provider = make_provider(timeouts=Timeouts(connect_s=1.0, read_s=0.2, synthesis_read_s=2.0))
    voice_id = provider.create_voice("nv-patient", SAMPLE)
    fake.set_latency(0.5)

    assert provider.synthesize("Worth the wait.", voice_id, VoiceSettings()).audio
    with pytest.raises(ProviderUnavailable):
        provider.subscription()


def test_create_voice_is_not_retried_after_a_read_timeout(fake, make_provider):
    outcomes = Outcomes()
    provider = make_provider(timeouts=Timeouts(connect_s=1.0, read_s=0.2), on_call=outcomes)
    fake.set_latency(0.5, "create_voice")

    with pytest.raises(RequestOutcomeUnknown) as caught:
        provider.create_voice("nv-user-7", SAMPLE)

    assert isinstance(caught.value, ProviderUnavailable) and caught.value.provider_code == "timeout"
    assert "reconcile" in caught.value.message
    assert fake.call_count("create_voice") == 1 and outcomes.of("create_voice") == ["timeout"]
    # Why: the provider finishes the request the client gave up on. A blind retry would have
    # taken a second slot; the caller finds the voice by the name it asked for instead.
    fake.wait_idle()
    fake.set_latency(0)
    assert [v.name for v in provider.list_voices() if v.category == "cloned"] == ["nv-user-7"]


def test_create_voice_is_not_retried_when_the_connection_drops_mid_answer(fake, provider):
    fake.set_down("close")
    with pytest.raises(RequestOutcomeUnknown) as caught:
        provider.create_voice("nv-dropped", SAMPLE)
    assert caught.value.provider_code == "connection_error"
    assert fake.call_count("create_voice") == 1


def test_a_gateway_timeout_on_create_voice_is_an_unknown_outcome(fake, provider):
    # A 504 comes from a gateway that stopped waiting; the provider behind it may have finished.
    fake.fail_next("create_voice", Fault(504))
    with pytest.raises(RequestOutcomeUnknown):
        provider.create_voice("nv-gateway", SAMPLE)
    assert fake.call_count("create_voice") == 1


def test_idempotent_calls_are_retried_when_the_connection_drops(fake, provider):
    fake.set_down("close")
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.list_voices())
    assert not isinstance(caught.value, RequestOutcomeUnknown)
    assert fake.call_count("list_voices") == ATTEMPTS


def test_create_voice_is_retried_when_the_connection_is_refused(make_provider):
    outcomes = Outcomes()
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    provider = make_provider(base_url=nobody_listens, on_call=outcomes)

    with pytest.raises(ProviderUnavailable) as caught:
        provider.create_voice("nv-nowhere", SAMPLE)

    assert not isinstance(caught.value, RequestOutcomeUnknown)  # nothing reached a provider
    assert outcomes.of("create_voice") == ["connection_error"] * ATTEMPTS


def test_429_rate_limit_waits_as_long_as_retry_after_says(fake, make_provider):
    provider = make_provider(retry_policy=fast_retries(max_delay_s=5.0))
    voice_id = provider.create_voice("nv-throttled", SAMPLE)
    fake.fail_next("synthesize", Fault(429, "rate_limit_exceeded", retry_after=0.6))

    started = time.monotonic()
    synthesis = provider.synthesize("Patience.", voice_id, VoiceSettings())

    assert synthesis.audio and time.monotonic() - started >= 0.6
    assert fake.call_count("synthesize") == 2


def test_429_rate_limit_without_retry_after_still_backs_off(fake, make_provider):
    provider = make_provider(retry_policy=fast_retries(max_delay_s=5.0), rate_limit_wait_s=0.4)
    fake.fail_next("subscription", Fault(429, "system_busy"))

    started = time.monotonic()
    provider.subscription()
    assert time.monotonic() - started >= 0.4


def test_429_concurrency_limit_retries_promptly(fake, make_provider):
    provider = make_provider(retry_policy=fast_retries(max_delay_s=5.0), rate_limit_wait_s=5.0)
    fake.fail_next("subscription", Fault(429, "concurrent_limit_exceeded"),
                   Fault(429, "too_many_concurrent_requests"))

    started = time.monotonic()
    provider.subscription()
    assert time.monotonic() - started < 0.5  # an in-flight request finishes soon; no long wait
    assert fake.call_count("subscription") == 3


# --- circuit breaker ----------------------------------------------------------------------------


def test_breaker_opens_fails_fast_without_calling_and_closes_once_the_provider_recovers(fake, make_provider):
    breaker = CircuitBreaker("elevenlabs", failure_threshold=3, reset_timeout_s=0.5)
    outcomes = Outcomes()
    provider = make_provider(breaker=breaker, retry_policy=fast_retries(attempts=1), on_call=outcomes)
    fake.set_down("503")

    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            provider.subscription()
    assert fake.call_count() == 3 and breaker.state == CircuitBreaker.OPEN

    for _ in range(10):
        started = time.monotonic()
        with pytest.raises(CircuitOpenError) as caught:
            provider.subscription()
        assert time.monotonic() - started < 0.05
    assert fake.call_count() == 3  # the provider was left alone
    assert caught.value.retryable and 0 < caught.value.retry_after <= 0.5
    assert outcomes.of("subscription")[-1] == "circuit_open"

    fake.set_down(None)
    time.sleep(0.55)
    assert provider.subscription().voice_limit == 3
    assert breaker.state == CircuitBreaker.CLOSED and fake.call_count() == 4


def test_a_failed_trial_keeps_the_breaker_open(fake, make_provider):
    breaker = CircuitBreaker("elevenlabs", failure_threshold=2, reset_timeout_s=0.3)
    provider = make_provider(breaker=breaker, retry_policy=fast_retries(attempts=1))
    fake.set_down("503")
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            provider.subscription()

    time.sleep(0.35)
    with pytest.raises(ProviderUnavailable) as trial:
        provider.subscription()
    assert not isinstance(trial.value, CircuitOpenError)  # the one trial went through...
    with pytest.raises(CircuitOpenError):
        provider.subscription()  # ...and, failing, closed the door again
    assert fake.call_count() == 3


def test_refusals_do_not_open_the_breaker(fake, make_provider):
    breaker = CircuitBreaker("elevenlabs", failure_threshold=2, reset_timeout_s=30)
    provider = make_provider(breaker=breaker)
    for _ in range(5):
        with pytest.raises(VoiceNotFound):
            provider.delete_voice("gone")
    assert breaker.state == CircuitBreaker.CLOSED


def test_adapters_for_the_same_provider_share_one_breaker(fake, base_url):
    reset_breakers()
    shared = shared_breaker(base_url, failure_threshold=2, reset_timeout_s=30)
    first = ElevenLabsVoiceProvider(KEY, base_url=base_url, retry_policy=fast_retries(attempts=1))
    second = ElevenLabsVoiceProvider(KEY, base_url=base_url + "/", retry_policy=fast_retries(attempts=1))
    try:
        assert first.breaker is second.breaker is shared
        assert shared_breaker("http://127.0.0.1:1") is not shared

        fake.set_down("503")
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                first.subscription()
        with pytest.raises(CircuitOpenError):
            second.subscription()  # learned from the first adapter's failures
        assert fake.call_count() == 2
    finally:
        first.close()
        second.close()
        reset_breakers()
    assert shared_breaker(base_url) is not shared  # tests can start from a fresh one


# --- the API key stays secret ----------------------------------------------------------------------


def test_the_api_key_appears_in_no_error_or_log(fake, make_provider, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[ProviderError] = []

    def capture(call):
        with pytest.raises(ProviderError) as caught:
            call()
        errors.append(caught.value)

    provider = make_provider(timeouts=Timeouts(connect_s=1.0, read_s=0.2, synthesis_read_s=0.2))
    # A provider that echoes the key it was sent back in its message.
    fake.fail_next("subscription", Fault(401, "invalid_api_key", f"Invalid API key: {KEY}"))
    capture(provider.subscription)
    fake.fail_next("list_voices", *[Fault(503, message=f"upstream said {KEY}")] * ATTEMPTS)
    capture(lambda: list(provider.list_voices()))
    fake.set_latency(0.5, "rename_voice")
    capture(lambda: provider.rename_voice("v", "n"))
    fake.set_latency(0)
    capture(lambda: make_provider(base_url=f"http://127.0.0.1:{free_port()}").subscription())
    opened = make_provider(breaker=CircuitBreaker("elevenlabs", failure_threshold=1),
                           retry_policy=fast_retries(attempts=1))
    fake.set_down("close")
    capture(opened.subscription)
    capture(opened.subscription)  # circuit open
    fake.set_down(None)
    fake.wait_idle()

    assert {type(e) for e in errors} >= {ProviderAuthError, ProviderUnavailable, CircuitOpenError}
    for error in errors:
        rendered = [str(error), repr(error), error.message, json.dumps(error.to_dict()),
                    "".join(traceback.format_exception(error))]
        assert not any(KEY in text for text in rendered), rendered
    assert "[redacted]" in errors[0].message
    assert KEY not in caplog.text and KEY not in repr(provider)


# --- the fake itself: behaviour other tests rely on ---------------------------------------------------


def test_the_voice_limit_holds_under_concurrent_creates(fake, make_provider):
    provider = make_provider()
    results: list[object] = []

    def create(i: int) -> None:
        try:
            results.append(provider.create_voice(f"nv-race-{i}", SAMPLE))
        except VoiceLimitReached as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(isinstance(r, str) for r in results) == 3
    assert sum(isinstance(r, VoiceLimitReached) for r in results) == 9
    assert fake.max_voices_seen == 3 and fake.cloned_count == 3


def test_every_endpoint_requires_the_key(fake, base_url):
    voice_id = fake.seed_voice("target")
    requests = [
        ("POST", "/v1/voices/add"), ("POST", f"/v1/voices/{voice_id}/edit"), ("DELETE", f"/v1/voices/{voice_id}"),
        ("GET", "/v2/voices"), ("POST", f"/v1/text-to-speech/{voice_id}"), ("GET", "/v1/user/subscription"),
    ]
    for method, path in requests:
        for headers in ({}, {"xi-api-key": "sk_not_it"}):
            response = httpx.request(method, base_url + path, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["detail"]["status"] == "invalid_api_key"
    assert fake.voice(voice_id) is not None


def test_voices_add_without_name_or_files_answers_422_like_the_real_api(fake, base_url):
    response = httpx.post(base_url + "/v1/voices/add", headers={"xi-api-key": KEY},
                          files={"remove_background_noise": (None, "false")})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "name"], ["body", "files"]]
    assert fake.created_total == 0


def test_latency_on_one_endpoint_does_not_hold_up_the_others(fake, base_url):
    fake.set_latency(1.0, "synthesize")
    voice_id = fake.seed_voice("slowpoke")
    slow = threading.Thread(target=lambda: httpx.post(
        f"{base_url}/v1/text-to-speech/{voice_id}", headers={"xi-api-key": KEY}, json={"text": "hi"}, timeout=5))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    response = httpx.get(base_url + "/v1/user/subscription", headers={"xi-api-key": KEY})
    assert response.status_code == 200 and time.monotonic() - started < 0.5
    slow.join()


def test_failure_probability_is_seeded_and_roughly_right(fake, base_url):
    def run() -> list[int]:
        fake.reset()
        fake.set_failure_rate("subscription", 0.3, Fault(503), seed=7)
        with httpx.Client(base_url=base_url, headers={"xi-api-key": KEY}) as client:
            return [client.get("/v1/user/subscription").status_code for _ in range(200)]

    first, second = run(), run()
    assert first == second  # the same seed fails the same calls
    assert 0.2 < first.count(503) / len(first) < 0.4


def test_the_fake_can_be_driven_over_http(fake, base_url, make_provider):
    control = FakeElevenLabsControl(base_url)
    provider = make_provider()
    try:
        control.configure(voice_limit=1)
        control.seed_voice("foreign-clone")
        with pytest.raises(VoiceLimitReached):
            provider.create_voice("nv-blocked", SAMPLE)

        control.reset()
        control.fail_next("create_voice", Fault(503), (500, "internal_server_error"))
        provider.create_voice("nv-after-faults", SAMPLE)
        control.set_latency(0.3, "subscription")
        started = time.monotonic()
        provider.subscription()
        assert time.monotonic() - started >= 0.3
        control.set_down("503")
        with pytest.raises(ProviderUnavailable):
            provider.subscription()
        control.clear_faults()

        state = control.state()
        assert state["created_total"] == 1 and state["calls"]["create_voice"] == 3
        assert state["faults"]["down"] is None
        assert [c["status"] for c in control.calls("create_voice")] == [503, 500, 200]
        assert KEY not in json.dumps(state)
    finally:
        control.close()


def test_the_fake_runs_standalone_in_another_process():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.elevenlabs", "--port", str(port), "--api-key", "sk_other",
         "--voice-limit", "1"],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    control = FakeElevenLabsControl(base_url)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                control.state()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the fake did not start"
                time.sleep(0.1)
        with ElevenLabsVoiceProvider("sk_other", base_url=base_url, retry_policy=fast_retries(),
                                     breaker=CircuitBreaker("elevenlabs")) as provider:
            provider.create_voice("nv-one", SAMPLE)
            with pytest.raises(VoiceLimitReached):
                provider.create_voice("nv-two", SAMPLE)
        assert control.state()["created_total"] == 1
    finally:
        control.close()
        process.terminate()
        process.wait(timeout=10)
