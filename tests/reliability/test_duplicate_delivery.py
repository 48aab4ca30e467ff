"""The same task message delivered more than once, also while the first run is still going.

At-least-once delivery means duplicates happen: a redelivery after a visibility timeout, a
producer retry, an operator re-sending a job. Here the copies run *concurrently* (a worker
with two pool processes, a slow provider so the runs overlap) and the job must still have one
effect: one charge, one recording, one voice at the provider.

(tests/perform/test_perform.py covers a duplicate sent after the job finished, and the perform
body run twice in a row; tests/voice/test_clone.py the clone body run twice in a row.)"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_job
from tests.reliability.chaos import (
    VISIBILITY_S,
    assert_one_perform_effect,
    chaos_stack,
    job_doc,
    our_remote_voices,
    perform,
    provider_calls,
    upload,
    user_with_voice,
    wait_for,
)


@pytest.fixture(scope="module")
def stack(base_env, tmp_path_factory):
    with chaos_stack(base_env, tmp_path_factory.mktemp("dup"), concurrency=2) as s:
        yield s


def synth_in_flight(stack) -> int:
    return sum(1 for c in stack.fake.calls if c.operation == "synthesize" and c.status is None)


def test_same_perform_delivered_three_times_at_once_is_one_note(stack):
    user, headers = user_with_voice(stack)
    synth_before = len(provider_calls(stack.fake, "synthesize"))
    stack.fake.set_latency(2, "synthesize")
    try:
        resp = perform(stack, headers)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        stack.send("perform.run", job_id, "perform")
        stack.send("perform.run", job_id, "perform")
        # both pool processes are synthesizing the same job at the same moment
        wait_for(lambda: synth_in_flight(stack) >= 2, 30, "two concurrent syntheses of the job")
    finally:
        stack.fake.set_latency(0, "synthesize")
    job = wait_job(stack.client, job_id, headers, timeout_s=60)
    assert job["state"] == "succeeded", job
    time.sleep(1.5)  # let the slower copies finish too: they must not add anything
    assert job_doc(stack, job_id)["attempts"] >= 2
    charge = assert_one_perform_effect(stack.db, user["id"], job_id)
    me = stack.client.get("/user/me", headers=headers).json()
    assert me["charCount"] == charge["effective"] == job["result"]["chars"]["effective"]
    recordings = stack.client.get("/recordings", headers=headers).json()
    assert recordings["total"] == 1
    # the stored note speaks the text that was charged
    assert recordings["items"][0]["text"] == job["result"]["text"]
    assert len(recordings["items"][0]["text"]) == charge["raw"]
    assert len(provider_calls(stack.fake, "synthesize")) - synth_before >= 2


def test_same_clone_delivered_three_times_at_once_creates_one_voice(stack):
    user, headers = stack.users()
    stack.fake.set_latency(3, "create_voice")
    try:
        resp = upload(stack, headers)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        stack.send("clone.run", job_id, "clone")
        stack.send("clone.run", job_id, "clone")
        job = wait_job(stack.client, job_id, headers, timeout_s=90)
    finally:
        stack.fake.set_latency(0, "create_voice")
    assert job["state"] == "succeeded", job
    wait_for(lambda: stack.fake.in_flight() == 0, 30, "the provider to go idle")
    time.sleep(1)
    assert job_doc(stack, job_id)["attempts"] >= 2
    remote = our_remote_voices(stack.fake, user["id"])
    assert len(remote) == 1, [v.name for v in remote]
    creations = [c for c in provider_calls(stack.fake, "create_voice")
                 if c.details.get("name", "").startswith(f"nv-{user['id']}-")]
    assert len(creations) == 1, creations
    meta = stack.client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "ready" and meta["voice_clone_id"] == remote[0].voice_id
    assert stack.db["voices"].count_documents({"user_id": user["id"], "state": "ready"}) == 1


def _rewind_delivery(stack, job_id: str) -> None:
    """Make the broker believe the job's message was delivered longer ago than the visibility
    timeout (kombu keeps the delivery time as the message's score in `unacked_index`): its next
    sweep delivers it again while the first run is still working on it."""
    r = stack.rds()

    def tag():
        for delivery_tag, raw in r.hscan_iter("unacked"):
            message = json.loads(raw)[0]
            if message.get("headers", {}).get("id") == job_id:
                return delivery_tag
        return None

    delivery_tag = wait_for(tag, 10, "the job's message among the unacknowledged ones")
    r.zadd("unacked_index", {delivery_tag: time.time() - VISIBILITY_S - 5})


def test_redelivery_while_the_first_run_is_still_going_is_one_note(stack):
    user, headers = user_with_voice(stack)
    stack.fake.set_latency(10, "synthesize")
    try:
        resp = perform(stack, headers, topic="a slow provider")
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        wait_for(lambda: synth_in_flight(stack) >= 1, 30, "the first synthesis")
        _rewind_delivery(stack, job_id)
        wait_for(lambda: job_doc(stack, job_id).get("attempts", 0) >= 2, 30, "the redelivered run to start")
        stack.fake.set_latency(0, "synthesize")
        job = wait_job(stack.client, job_id, headers, timeout_s=60)
    finally:
        stack.fake.set_latency(0, "synthesize")
    assert job["state"] == "succeeded", job
    wait_for(lambda: stack.fake.in_flight() == 0, 30, "the first run's slow synthesis to end")
    time.sleep(1.5)
    charge = assert_one_perform_effect(stack.db, user["id"], job_id)
    me = stack.client.get("/user/me", headers=headers).json()
    assert me["charCount"] == charge["effective"]
    assert stack.client.get("/recordings", headers=headers).json()["total"] == 1
    assert len(our_remote_voices(stack.fake, user["id"])) == 1
