"""Workers killed mid-task with SIGKILL (no warm shutdown, no chance to ack or clean up).

Two paths, as Celery's prefork pool has them:
- the pool child running the task dies: the parent sees WorkerLostError and, with
  task_reject_on_worker_lost, puts the message back at once; a fresh child runs it again;
- the whole worker dies (parent and children): nobody rejects anything. On Redis the message
  stays unacknowledged until the visibility timeout, then a new worker gets it; on RabbitMQ the
  broker sees the worker's connection close and hands the message to another worker at once.
Either way the job completes with exactly one effect: one charge, one recording, one voice.
The pool-child tests run on both brokers; the whole-worker tests on the broker whose behaviour
they show."""

from __future__ import annotations

import time

import pytest
from bson import ObjectId

from tests.conftest import wait_job
from tests.reliability.chaos import (
    VISIBILITY_S,
    assert_one_perform_effect,
    chaos_stack,
    freeze_worker,
    job_doc,
    kill_worker_outright,
    our_remote_voices,
    perform,
    pid_running,
    provider_calls,
    rabbitmq_vhost,
    sigkill,
    upload,
    user_with_voice,
    wait_for,
    worker_of,
)

FIGURES: dict[str, float] = {}


#: on RabbitMQ a killed worker's job must be finished by another worker within this (from the kill)
RABBITMQ_RECOVERY_S = 20


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def stack(request, base_env, tmp_path_factory):
    broker_url = rabbitmq_vhost(request) if request.param == "rabbitmq" else ""
    with chaos_stack(base_env, tmp_path_factory.mktemp("kill"), concurrency=2, broker_url=broker_url) as s:
        yield s


def in_flight(fake, operation: str) -> bool:
    return any(c.operation == operation and c.status is None for c in fake.calls)


def _perform_killed_mid_synthesis(stack, kill) -> tuple[dict, dict, str, float]:
    user, headers = user_with_voice(stack)
    stack.fake.set_latency(5, "synthesize")
    try:
        resp = perform(stack, headers)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        wait_for(lambda: in_flight(stack.fake, "synthesize"), 30, "the synthesis to reach the provider")
        killed_at = time.monotonic()
        kill(job_id)
    finally:
        stack.fake.set_latency(0, "synthesize")
    return user, headers, job_id, killed_at


def _assert_one_note(stack, user, headers, job_id) -> dict:
    job = wait_job(stack.client, job_id, headers, timeout_s=VISIBILITY_S + 60)
    assert job["state"] == "succeeded", job
    charge = assert_one_perform_effect(stack.db, user["id"], job_id)
    me = stack.client.get("/user/me", headers=headers).json()
    assert me["charCount"] == charge["effective"] == job["result"]["chars"]["effective"]
    assert stack.client.get("/recordings", headers=headers).json()["total"] == 1
    assert len(our_remote_voices(stack.fake, user["id"])) == 1
    assert job_doc(stack, job_id)["attempts"] == 2  # the killed run and the one that finished
    assert job["result"]["charCount"] == stack.db["users"].find_one({"_id": ObjectId(user["id"])})["charCount"]
    return job


def _hit_the_worker_running_it(stack, hit) -> tuple[dict, dict, str, str, float]:
    """A perform whose worker (the one whose pool child runs it) gets `hit(stack, name)`
    mid-synthesis; returns the user, their headers, the job, the worker's name and the time."""
    hits: dict[str, float] = {}

    def on_job(job_id):
        name = worker_of(stack, pid_running(stack, job_id))
        hits[name] = time.monotonic()
        hit(stack, name)

    user, headers, job_id, _ = _perform_killed_mid_synthesis(stack, on_job)
    (name, hit_at), = hits.items()
    return user, headers, job_id, name, hit_at


def _started_again_after(stack, job_id: str, since: float, timeout_s: float) -> float:
    """Seconds from `since` until another run of the job started (its second attempt)."""
    wait_for(lambda: job_doc(stack, job_id)["attempts"] >= 2, timeout_s, "the job to start again", every_s=0.02)
    return round(time.monotonic() - since, 2)


def test_pool_child_killed_mid_synthesis_is_requeued_at_once(stack):
    synth_before = len(provider_calls(stack.fake, "synthesize"))
    user, headers, job_id, killed_at = _perform_killed_mid_synthesis(
        stack, lambda job_id: sigkill(pid_running(stack, job_id)))
    _assert_one_note(stack, user, headers, job_id)
    FIGURES[f"{_broker(stack)}_child_kill_synthesis_recovery_s"] = round(time.monotonic() - killed_at, 1)
    # the provider saw the killed synthesis and the one that delivered the note
    assert len(provider_calls(stack.fake, "synthesize")) - synth_before >= 2
    assert stack.ready().status_code == 200  # the pool replaced its child and consumes


def test_pool_child_killed_mid_clone_creation_leaves_one_voice(stack):
    user, headers = stack.users()
    stack.fake.set_latency(4, "create_voice")
    try:
        resp = upload(stack, headers)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        wait_for(lambda: in_flight(stack.fake, "create_voice"), 60, "the voice creation to reach the provider")
        killed_at = time.monotonic()
        sigkill(pid_running(stack, job_id))
    finally:
        stack.fake.set_latency(0, "create_voice")
    job = wait_job(stack.client, job_id, headers, timeout_s=VISIBILITY_S + 60)
    FIGURES[f"{_broker(stack)}_child_kill_clone_recovery_s"] = round(time.monotonic() - killed_at, 1)
    assert job["state"] == "succeeded", job
    assert job_doc(stack, job_id)["attempts"] == 2
    # the killed request still created the voice at the provider; the rerun adopted it
    remote = our_remote_voices(stack.fake, user["id"])
    assert len(remote) == 1, remote
    creations = [c for c in provider_calls(stack.fake, "create_voice")
                 if c.status == 200 and c.details.get("name", "").startswith(f"nv-{user['id']}-")]
    assert len(creations) == 1, creations
    assert job["result"]["voice_clone_id"] == remote[0].voice_id
    meta = stack.client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "ready" and meta["voice_clone_id"] == remote[0].voice_id
    live = list(stack.db["voices"].find({"user_id": user["id"], "state": {"$nin": ["deleted", "missing"]}}))
    assert [(v["state"], v["voice_id"]) for v in live] == [("ready", remote[0].voice_id)]


def _broker(stack) -> str:
    return "rabbitmq" if stack.on_rabbitmq else "redis"


# Redis only: on RabbitMQ the message comes back at once (the next test)
@pytest.mark.parametrize("stack", ["redis"], indirect=True)
def test_whole_worker_killed_mid_synthesis_redelivers_after_visibility_timeout(stack):

    def kill_all(job_id):
        pid_running(stack, job_id)  # it is running, not merely queued
        kill_worker_outright(stack, "w1")

    user, headers, job_id, killed_at = _perform_killed_mid_synthesis(stack, kill_all)
    assert stack.ready().status_code == 503  # nobody consumes now
    stack.start_worker("w2", concurrency=2)  # a fresh worker
    _assert_one_note(stack, user, headers, job_id)
    waited = time.monotonic() - killed_at
    FIGURES["redis_whole_worker_kill_recovery_s"] = round(waited, 1)
    # nothing rejected the message: it came back only when its visibility timeout ran out
    assert waited >= VISIBILITY_S - 8, waited
    print(f"\nworker-kill figures: {FIGURES}")


@pytest.mark.parametrize("stack", ["rabbitmq"], indirect=True)
def test_whole_worker_killed_on_rabbitmq_another_worker_finishes_within_seconds(stack):
    """A worker host dies: its worker process and every child SIGKILLed mid-synthesis. RabbitMQ
    sees its connection close and gives the message to the other worker at once."""
    stack.start_worker("w3", concurrency=2)  # a second worker, already consuming
    user, headers, job_id, killed, killed_at = _hit_the_worker_running_it(stack, kill_worker_outright)
    FIGURES["rabbitmq_whole_worker_kill_restarted_s"] = _started_again_after(stack, job_id, killed_at,
                                                                             RABBITMQ_RECOVERY_S)
    assert stack.ready().status_code == 200  # the other worker consumes every queue
    _assert_one_note(stack, user, headers, job_id)
    waited = time.monotonic() - killed_at
    FIGURES["rabbitmq_whole_worker_kill_recovery_s"] = round(waited, 1)
    assert waited < RABBITMQ_RECOVERY_S, waited
    # the surviving worker ran it (its log has the job), not a worker started after the kill
    survivor = next(name for name in stack.workers.procs if name != killed)
    assert job_id in stack.workers.log(survivor)


@pytest.mark.parametrize("stack", ["rabbitmq"], indirect=True)
def test_frozen_worker_host_on_rabbitmq_is_found_by_heartbeats_and_its_job_finished(stack):
    """A worker host stops answering without closing its connection (SIGSTOP of the worker and
    its children: no FIN, no RST). RabbitMQ finds it by the missed heartbeats (BROKER_HEARTBEAT_S,
    10 s) and gives its message to the other worker."""
    stack.start_worker("w4", concurrency=2)  # beside the survivor of the test above
    user, headers, job_id, frozen, frozen_at = _hit_the_worker_running_it(stack, freeze_worker)
    try:
        FIGURES["rabbitmq_frozen_worker_restarted_s"] = _started_again_after(stack, job_id, frozen_at, 45)
        _assert_one_note(stack, user, headers, job_id)
        waited = time.monotonic() - frozen_at
        FIGURES["rabbitmq_frozen_worker_recovery_s"] = round(waited, 1)
        # two heartbeats and the rerun, not a visibility timeout
        assert waited < 45, waited
    finally:
        kill_worker_outright(stack, frozen)
    print(f"\nworker-kill figures: {FIGURES}")
