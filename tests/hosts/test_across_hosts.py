"""The service across hosts (issue 16): the user journey, and partitions between hosts.

The hosts are network namespaces (tests/hosts/netlab.py, tests/hosts/conftest.py): a store,
an API and two workers. A partition takes a host's port on the back switch down, so its packets
are lost on the way (what a failed switch port or cable does), while the host itself sees its
link up and meets timeouts.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_job
from tests.perform.helpers import perform, user_with_voice
from tests.reliability.chaos import assert_one_perform_effect, wait_for

#: How long a worker host is cut off mid-perform. Longer than every timeout the worker meets
#: (Mongo server selection 2 s, Redis socket 5 s, the broker's socket 10 s and its health check
#: 15 s), so each of its connections has failed and must be made again after the healing;
#: 20 s rather than the issue's 30 s keeps the package inside its time budget, and nothing on
#: the worker's side changes between 20 and 30 s (the next timeout is the 90 s time limit).
WORKER_CUT_S = 20


@pytest.fixture(scope="module")
def singer(cluster):
    """A user registered, and cloned, through the API host (the first half of the journey)."""
    started = time.monotonic()
    user, headers = user_with_voice(cluster.client, cluster.users)
    print(f"[hosts] register + clone across hosts: {time.monotonic() - started:.1f} s", flush=True)
    return user, headers


def voices_of(cluster, user_id: str) -> list[dict]:
    """The user's voices at the fake ElevenLabs on the store host (our names: nv-<user>-...)."""
    return [v for v in cluster.fake.state()["voices"]
            if v.get("category") == "cloned" and v["name"].startswith(f"nv-{user_id}-")]


def calls(cluster, operation: str) -> list[dict]:
    return cluster.fake.calls(operation)


def test_the_journey_runs_across_hosts(cluster, singer):
    """Register, clone, perform and download, with the API, two workers and the stores each on
    their own host: every provider call came from a worker host, none from the API."""
    user, headers = singer
    client = cluster.client
    started = time.monotonic()
    resp = perform(client, headers)
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=120)
    assert job["state"] == "succeeded", job["error"]
    audio = client.get(f"/recordings/{job['result']['recording_id']}/audio", headers=headers)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"
    assert len(audio.content) > 10_000 and audio.content.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3"))
    print(f"[hosts] perform + download across hosts: {time.monotonic() - started:.1f} s", flush=True)

    callers = {cluster.host_of(c["client"]) for op in ("create_voice", "synthesize") for c in calls(cluster, op)}
    assert callers and callers <= {"worker1", "worker2"}, callers
    assert len(voices_of(cluster, user["id"])) == 1


def test_a_worker_cut_off_mid_perform_finishes_its_job_once(cluster, singer):
    """A worker host loses the store (broker, Redis, MongoDB and the providers behind it) while
    it synthesizes a note, for WORKER_CUT_S. The note still arrives, once: one charge, one
    recording, and no second voice at the provider."""
    user, headers = singer
    client, fake = cluster.client, cluster.fake
    before = len(calls(cluster, "synthesize"))
    fake.set_latency(3.0, "synthesize")  # holds the synthesis long enough to cut it mid-way
    try:
        resp = perform(client, headers, topic="running in the rain")
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        call = wait_for(lambda: next((c for c in calls(cluster, "synthesize")[before:] if c["status"] is None), None),
                        60, "the synthesis to reach the provider")
    finally:
        fake.set_latency(0.0, "synthesize")
    victim = cluster.host_of(call["client"])
    assert victim in ("worker1", "worker2"), call
    cut_at = time.monotonic()
    with cluster.lab.partitioned(victim):
        # while it is away the job is not lost and not failed: it is still going
        time.sleep(WORKER_CUT_S)
        view = client.get(f"/jobs/{job_id}", headers=headers).json()
        assert view["state"] in ("queued", "running"), view
    healed_at = time.monotonic()
    job = wait_job(client, job_id, headers, timeout_s=150)
    done_at = time.monotonic()
    assert job["state"] == "succeeded", job["error"]
    assert_one_perform_effect(cluster.db, user["id"], job_id)
    assert len(voices_of(cluster, user["id"])) == 1, voices_of(cluster, user["id"])
    finishers = [cluster.host_of(c["client"]) for c in calls(cluster, "synthesize")[before:] if c["status"] == 200]
    print(f"[hosts] {victim} cut {healed_at - cut_at:.1f} s mid-synthesis; job done {done_at - healed_at:.1f} s "
          f"after healing ({done_at - cut_at:.1f} s after the cut); synthesis answered to {finishers}; "
          f"attempts {cluster.db['jobs'].find_one({'_id': job_id}).get('attempts')}", flush=True)


def test_the_api_cut_off_from_the_stores_answers_503_and_recovers(cluster, singer):
    """The API host loses the back network (stores and broker) but not its clients: it answers
    503 SERVICE_UNAVAILABLE with a message and an action, stays up, and serves again by itself
    once the network is back."""
    _user, headers = singer
    client = cluster.client
    assert client.get("/user/me", headers=headers).status_code == 200
    cut_at = time.monotonic()
    with cluster.lab.partitioned("api"):
        answers = {}
        for method, path, body in (("GET", "/user/me", None), ("GET", "/recordings", None),
                                   ("POST", "/perform", {"routine_type": "morning_motivation", "topic": "tea"})):
            t0 = time.monotonic()
            resp = client.request(method, path, headers=headers, json=body, timeout=60)
            answers[path] = (resp.status_code, round(time.monotonic() - t0, 1))
            assert resp.status_code == 503, (path, resp.text)
            err = resp.json()
            assert err["error"] == "SERVICE_UNAVAILABLE" and err["message"] and err["action"], err
        assert client.get("/health").status_code == 200  # the process itself is fine
        ready = client.get("/health/ready", timeout=60)
        assert ready.status_code == 503, ready.text
        print(f"[hosts] API cut off: answers {answers}", flush=True)
    healed_at = time.monotonic()
    wait_for(lambda: client.get("/user/me", headers=headers, timeout=30).status_code == 200, 60,
             "the API to serve again after the network came back", every_s=0.5)
    print(f"[hosts] API serves again {time.monotonic() - healed_at:.1f} s after healing "
          f"(cut {healed_at - cut_at:.1f} s)", flush=True)
    # and a note submitted now is delivered: nothing half-written by the refused requests
    resp = perform(client, headers, topic="after the storm")
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=120)
    assert job["state"] == "succeeded", job["error"]
