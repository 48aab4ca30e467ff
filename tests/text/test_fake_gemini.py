"""The fake Gemini server: HTTP switches, Google's error shapes, and standalone mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.errors import ProviderUnavailable
from shared.perform.prompt import build_voice_note_prompt
from shared.perform.routines import get_routine
from shared.perform.text.base import TextBlockedError
from shared.perform.text.gemini import GeminiTextGenerator
from shared.providers.resilience import CircuitBreaker
from tests.fakes.server import free_port
from tests.text import KEY

REPO = Path(__file__).resolve().parents[2]
URL = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        "systemInstruction": {"parts": [{"text": "Write only in Spanish, between 40 and 60 words."}]}}


@pytest.fixture
def client(server):
    server[0].reset()
    with httpx.Client(base_url=server[1], timeout=5) as c:
        yield c


def test_raw_request_gets_a_realistic_answer(client):
    r = client.post(URL, json=BODY, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200
    data = r.json()
    cand = data["candidates"][0]
    assert cand["finishReason"] == "STOP" and cand["content"]["role"] == "model"
    text = cand["content"]["parts"][0]["text"]
    assert "Hola" in text and 40 <= len(text.split()) <= 70  # Spanish, sized from the instruction
    assert set(data["usageMetadata"]) == {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}
    assert data["modelVersion"] == "gemini-2.5-flash"


def test_missing_and_wrong_keys_use_googles_error_shape(client):
    missing = client.post(URL, json=BODY)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = client.post(URL, json=BODY, headers={"x-goog-api-key": "nope"})
    err = wrong.json()["error"]
    assert wrong.status_code == 400 and (err["code"], err["status"]) == (400, "INVALID_ARGUMENT")
    assert err["details"][0]["reason"] == "API_KEY_INVALID"


def test_malformed_request_is_invalid_argument(client):
    r = client.post(URL, json={"contents": "nope"}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_http_switches(client):
    h = {"x-goog-api-key": KEY}
    client.post("/_fake/fail", json={"count": 1, "status": 429})
    r = client.post(URL, json=BODY, headers=h)
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    client.post("/_fake/answer", json={"count": 1, "kind": "blocked_prompt"})
    r = client.post(URL, json=BODY, headers=h).json()
    assert r["promptFeedback"]["blockReason"] == "SAFETY" and "candidates" not in r
    client.post("/_fake/reply", json={"text": "Canned reply."})
    assert client.post(URL, json=BODY, headers=h).json()["candidates"][0]["content"]["parts"][0]["text"] == \
        "Canned reply."
    recorded = client.get("/_fake/requests").json()
    assert [r["status"] for r in recorded] == [429, 200, 200]
    assert recorded[0]["body"] == BODY
    client.post("/_fake/reset")
    assert client.get("/_fake/requests").json() == []


def test_standalone_process_serves_the_sdk():
    """`python -m tests.fakes.gemini --port N --api-key K` works with the real adapter."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.gemini", "--port", str(port), "--api-key", "standalone-key"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/_fake/requests", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("standalone fake did not start")
                time.sleep(0.1)
        gen = GeminiTextGenerator("standalone-key", base_url=base, retry_attempts=1,
                                  breaker=CircuitBreaker("standalone"))
        prompt = build_voice_note_prompt(get_routine("affirmation"), "my exam", "english")
        assert gen.generate(prompt).text
        httpx.post(f"{base}/_fake/answer", json={"count": 1, "kind": "safety"})
        with pytest.raises(TextBlockedError):
            gen.generate(prompt)
        httpx.post(f"{base}/_fake/fail", json={"count": 1, "status": 500})
        with pytest.raises(ProviderUnavailable):
            gen.generate(prompt)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_stale_slow_request_does_not_eat_the_next_tests_script(server, client):
    """A handler still sleeping from an earlier (timed-out) call must not consume answers or
    failures scripted after a reset: outcomes are decided when a request arrives."""
    fake, _ = server
    h = {"x-goog-api-key": KEY}
    fake.set_latency(0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(URL, json=BODY, headers=h, timeout=0.1)
    fake.reset()  # the next "test" starts while that handler still sleeps
    fake.answer_next(1, "safety")
    time.sleep(0.6)  # the stale handler wakes up and answers into the void
    r = client.post(URL, json=BODY, headers=h).json()
    assert r["candidates"][0]["finishReason"] == "SAFETY"
