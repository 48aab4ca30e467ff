"""Provider fault matrix: the fake ElevenLabs and Gemini servers answer a real worker's calls with
timeouts, 5xx bursts, 429s, 401s and slow answers. Each fault gets the behaviour a user needs:
- transient (5xx, 429, dropped connection, slow): retried with backoff, the note is delivered,
  and the provider's call log shows the retries;
- terminal (401 quota_exceeded / invalid_api_key, retries exhausted, timeouts): the job fails
  with PROVIDER_REJECTED or PROVIDER_UNAVAILABLE, a message and an action, and the characters
  are refunded (charCount unchanged);
- the text writer failing: the note is written by the local composer instead.
Then the circuit breaker: it opens after consecutive failures (jobs fail fast, no call reaches
the provider) and closes again after its reset timeout.

(Re-warming after voice_not_found is tests/perform/test_perform_providers.py::
test_voice_not_found_at_provider_rewarms; a synthesis failure's refund is also there.)"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import wait_job
from tests.fakes.elevenlabs import Fault
from tests.reliability.chaos import chaos_stack, perform, user_with_voice

SYNTH_TIMEOUT_S = 1.5
RESULTS: list[dict] = []


@pytest.fixture(scope="module")
def stack(base_env, tmp_path_factory):
    # one pool process, so one breaker sees every call; the matrix keeps it out of the way
    with chaos_stack(base_env, tmp_path_factory.mktemp("faults"), concurrency=1,
                     PROVIDER_BREAKER_THRESHOLD="1000", ELEVEN_LABS_SYNTHESIS_TIMEOUT_S=str(SYNTH_TIMEOUT_S)) as s:
        yield s


@pytest.fixture(scope="module")
def performer(stack):
    return user_with_voice(stack, monthly_limit=10_000_000)


@dataclass
class Case:
    name: str
    inject: Any  # (fake ElevenLabs, fake Gemini) -> None
    outcome: str  # "ok" | "fallback" | an error code
    synth_calls: int | None = None  # synthesize calls the job makes, retries included
    gemini_calls: int | None = None
    extra: dict = field(default_factory=dict)


CASES = [
    Case("elevenlabs 5xx burst", lambda f, g: f.fail_next("synthesize", 503, 500), "ok", synth_calls=3),
    Case("elevenlabs 502 html page", lambda f, g: f.fail_next("synthesize", Fault(502, style="html")), "ok",
         synth_calls=2),
    Case("elevenlabs connection dropped", lambda f, g: f.fail_next("synthesize", Fault(200, style="close")), "ok",
         synth_calls=2),
    Case("elevenlabs 429 concurrency", lambda f, g: f.fail_next(
        "synthesize", (429, "concurrent_limit_exceeded"), (429, "too_many_concurrent_requests")), "ok", synth_calls=3),
    Case("elevenlabs 429 rate limit", lambda f, g: f.fail_next(
        "synthesize", Fault(429, "rate_limit_exceeded", retry_after=0.5)), "ok", synth_calls=2,
         extra={"min_seconds": 0.5}),
    Case("elevenlabs 429 system busy", lambda f, g: f.fail_next(
        "synthesize", Fault(429, "system_busy", retry_after=0.3)), "ok", synth_calls=2),
    Case("elevenlabs slow answer", lambda f, g: f.set_latency(SYNTH_TIMEOUT_S * 0.6, "synthesize"), "ok",
         synth_calls=1),
    Case("elevenlabs 401 quota_exceeded", lambda f, g: f.fail_next("synthesize", (401, "quota_exceeded")),
         "PROVIDER_REJECTED", synth_calls=1),
    Case("elevenlabs 401 invalid_api_key", lambda f, g: f.fail_next("synthesize", (401, "invalid_api_key")),
         "PROVIDER_REJECTED", synth_calls=1),
    Case("elevenlabs 5xx past the retries", lambda f, g: f.fail_next("synthesize", *[503] * 4),
         "PROVIDER_UNAVAILABLE", synth_calls=4),
    Case("elevenlabs timeout", lambda f, g: f.set_latency(SYNTH_TIMEOUT_S + 1.5, "synthesize"),
         "PROVIDER_UNAVAILABLE", synth_calls=4),
    Case("gemini 5xx burst", lambda f, g: g.fail_next(2, 503), "ok", synth_calls=1, gemini_calls=3),
    Case("gemini 429", lambda f, g: g.fail_next(1, 429), "ok", synth_calls=1, gemini_calls=2),
    Case("gemini slow answer", lambda f, g: g.set_latency(1.0), "ok", synth_calls=1, gemini_calls=1),
    Case("gemini 401 bad key", lambda f, g: g.fail_next(1, 401), "fallback", synth_calls=1, gemini_calls=1),
]


def _clear(stack) -> None:
    stack.fake.clear_faults()
    stack.gemini.set_latency(0)
    stack.fake.wait_idle(timeout=15)  # a call the worker gave up on still runs to its end there


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_provider_fault(stack, performer, case):
    _, headers = performer
    charged_before = stack.client.get("/user/me", headers=headers).json()["charCount"]
    calls_before, gemini_before = len(stack.fake.calls), stack.gemini.calls
    case.inject(stack.fake, stack.gemini)
    started = time.monotonic()
    try:
        resp = perform(stack, headers, topic=f"fault {case.name}")
        assert resp.status_code == 202, resp.text
        job = wait_job(stack.client, resp.json()["job_id"], headers, timeout_s=90)
    finally:
        _clear(stack)
    took = time.monotonic() - started
    synth = [c for c in stack.fake.calls[calls_before:] if c.operation == "synthesize"]
    charged_after = stack.client.get("/user/me", headers=headers).json()["charCount"]
    RESULTS.append({"case": case.name, "state": job["state"], "error": (job.get("error") or {}).get("error"),
                    "synth_calls": len(synth), "gemini_calls": stack.gemini.calls - gemini_before,
                    "seconds": round(took, 1)})
    if case.synth_calls is not None:
        assert len(synth) == case.synth_calls, [(c.status, c.code) for c in synth]
    if case.gemini_calls is not None:
        assert stack.gemini.calls - gemini_before == case.gemini_calls
    if case.outcome in ("ok", "fallback"):
        assert job["state"] == "succeeded", job["error"]
        assert charged_after - charged_before == job["result"]["chars"]["effective"]
        assert job["result"]["fell_back"] is (case.outcome == "fallback")
        assert job["result"]["text_provider"] == ("local" if case.outcome == "fallback" else "gemini")
        assert took >= case.extra.get("min_seconds", 0)
    else:
        assert job["state"] == "failed", job
        error = job["error"]
        assert error["error"] == case.outcome and error["message"] and error["action"], error
        assert "fake-eleven-key" not in error["message"]
        assert charged_after == charged_before  # refunded
        charge = stack.db["charges"].find_one({"_id": job["job_id"]})
        assert charge is not None and charge["state"] == "released"  # held, never settled: given back
        assert stack.client.get("/recordings", headers=headers,
                                params={"limit": 100}).json()["items"][0]["job_id"] != job["job_id"]


def test_circuit_breaker_opens_fails_fast_and_closes_after_its_reset_timeout(stack, performer):
    _, headers = performer
    reset_s = 3.0
    stack.workers.stop("w1")
    stack.start_worker("breaker", concurrency=1, PROVIDER_BREAKER_THRESHOLD="3",
                       PROVIDER_BREAKER_RESET_S=str(reset_s))
    try:
        def synth_calls():
            return sum(1 for c in stack.fake.calls if c.operation == "synthesize")

        def run() -> dict:
            resp = perform(stack, headers, topic="the breaker")
            assert resp.status_code == 202, resp.text
            return wait_job(stack.client, resp.json()["job_id"], headers, timeout_s=60)

        charged = stack.client.get("/user/me", headers=headers).json()["charCount"]
        stack.fake.set_down("503")
        before = synth_calls()
        first = run()
        assert first["state"] == "failed" and first["error"]["error"] == "PROVIDER_UNAVAILABLE"
        assert synth_calls() - before == 3  # the third failure opened it: the fourth try never left
        before, started = synth_calls(), time.monotonic()
        fast = run()
        fast_s = time.monotonic() - started
        assert fast["state"] == "failed" and fast["error"]["error"] == "PROVIDER_UNAVAILABLE"
        assert synth_calls() == before  # failed fast: nothing reached the provider
        assert stack.client.get("/user/me", headers=headers).json()["charCount"] == charged  # both refunded
        stack.fake.set_down(None)
        time.sleep(reset_s + 0.5)
        before = synth_calls()
        healed = run()
        assert healed["state"] == "succeeded", healed["error"]
        assert synth_calls() - before == 1  # the half-open trial went through and closed it
        assert run()["state"] == "succeeded"
        RESULTS.append({"case": "circuit breaker", "fail_fast_job_s": round(fast_s, 2), "reset_s": reset_s})
    finally:
        stack.fake.set_down(None)
        stack.workers.stop("breaker")
    print("\nprovider faults:")
    for row in RESULTS:
        print("  ", row)
