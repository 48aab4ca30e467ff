"""Cloning through the real ElevenLabs adapter, over HTTP, against the fake provider."""

from __future__ import annotations

from tests import samples
from tests.conftest import wait_job
from tests.voice.test_clone import upload


def _clone(stack, headers, data=None):
    resp = upload(stack.client, headers, data or samples.original())
    assert resp.status_code == 202, resp.text
    return wait_job(stack.client, resp.json()["job_id"], headers, timeout_s=180)


def test_clone_creates_one_voice_at_the_provider(eleven_stack):
    stack = eleven_stack
    stack.fake.reset()
    _, headers = stack.users()
    job = _clone(stack, headers)
    assert job["state"] == "succeeded", job["error"]
    voice_id = job["result"]["voice_clone_id"]
    remote = stack.fake.voice(voice_id)
    assert remote is not None and remote.name.startswith("nv-")
    assert stack.fake.created_total == 1
    # the sample that reached the provider is the normalized MP3
    create_calls = [c for c in stack.fake.calls if c.operation == "create_voice"]
    assert len(create_calls) == 1


def test_provider_5xx_then_success_gives_one_voice(eleven_stack):
    stack = eleven_stack
    stack.fake.reset()
    stack.fake.fail_next("create_voice", 503, 500)
    _, headers = stack.users()
    job = _clone(stack, headers)
    assert job["state"] == "succeeded", job["error"]
    assert stack.fake.created_total == 1
    assert stack.fake.cloned_count == 1
    assert stack.fake.call_count("create_voice") == 3


def test_provider_down_fails_clearly_and_previous_voice_stays(eleven_stack):
    stack = eleven_stack
    db = stack.db
    stack.fake.reset()
    user, headers = stack.users()
    first = _clone(stack, headers)
    assert first["state"] == "succeeded"
    voice_id = first["result"]["voice_clone_id"]

    stack.fake.set_down("503")
    try:
        job = _clone(stack, headers, samples.reencoded("flac"))
    finally:
        stack.fake.set_down(None)
    assert job["state"] == "failed"
    assert job["error"]["error"] == "PROVIDER_UNAVAILABLE"
    assert job["error"]["action"]
    meta = stack.client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "ready"
    assert meta["voice_clone_id"] == voice_id
    assert meta["last_error"]["error"] == "PROVIDER_UNAVAILABLE"
    assert stack.fake.voice(voice_id) is not None
    # no record holds a slot for the failed attempt
    assert db["voices"].count_documents({"user_id": user["id"], "state": {"$in": ["creating", "ready"]}}) == 1
