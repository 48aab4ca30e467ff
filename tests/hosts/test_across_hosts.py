"""The service across hosts (issue 16): the user journey, and partitions between hosts.

The hosts are network namespaces (tests/hosts/netlab.py, tests/hosts/conftest.py): a store,
an API and two workers. A partition takes a host's port on the back switch down, so its packets
are lost on the way (what a failed switch port or cable does), while the host itself sees its
link up and meets timeouts.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
from collections.abc import Iterator
from functools import partial

import pytest
from bson import ObjectId

from shared.pool.remote import CREATE_CLAIM_TTL_S
from tests import samples
from tests.conftest import wait_job
from tests.hosts.conftest import TIME_LIMIT_S, VOICE_LIMIT
from tests.perform.helpers import perform, user_with_voice
from tests.reliability.chaos import assert_one_perform_effect, wait_for

#: How long a worker host is cut off mid-perform (the issue's 30 s): longer than every timeout
#: the worker meets on its stores (Mongo server selection 2 s, Redis socket 2 s), and than
#: RabbitMQ's detection of its dead connection (missed heartbeats, BROKER_HEARTBEAT_S 5 s in the
#: lab: 7-15 s measured), after which the broker gives its message to the other worker host.
WORKER_CUT_S = 30
#: A worker host cut off while it creates a voice stays away past the creation claim
#: (shared/pool/remote.py CREATE_CLAIM_TTL_S, 15 s), the lock that keeps two runs of one job
#: from creating two voices, and until another host has taken the creation over (at most this).
TAKEOVER_S = 60
#: the cut host's lease on the pool's only voice lapses this long into the cut (see the test)
LEASE_LEFT_S = 5
#: how long the other host may take to finish both the note and the newcomer's clone
LEASE_TAKEOVER_S = 90
#: the slow, lossy network between the workers and the store (issue 16)
DELAY_MS, LOSS = 200, 0.05
BATCH = 4
#: the longest a request may wait for its 503 while the API host has lost the stores
API_ANSWER_S = 20


@pytest.fixture(scope="module")
def singer(cluster):
    """A user registered, and cloned, through the API host (the first half of the journey)."""
    started = time.monotonic()
    user, headers = user_with_voice(cluster.client, cluster.users)
    print(f"[hosts] register + clone across hosts: {time.monotonic() - started:.1f} s", flush=True)
    return user, headers


def our_remote_voices(cluster, user_id: str = "") -> list[dict]:
    """Our voices (of one user, or all) at the fake ElevenLabs on the store host; our names are
    nv-<user>-..."""
    return [v for v in cluster.fake.state()["voices"]
            if v.get("category") == "cloned" and v["name"].startswith(f"nv-{user_id}-" if user_id else "nv-")]


def assert_no_voice_leaked(cluster) -> None:
    """Every voice of ours at the provider is one our records hold a slot for, and the reverse."""
    remote = sorted(v["voice_id"] for v in our_remote_voices(cluster))
    held = sorted(r["voice_id"] for r in cluster.db["voices"].find(
        {"state": {"$in": ["creating", "ready", "evicting", "delete_failed"]}}, {"voice_id": 1}))
    assert remote == held, (remote, held)


def calls(cluster, operation: str) -> list[dict]:
    return cluster.fake.calls(operation)


def submit_held(cluster, operation: str, hold_s: float, submit) -> tuple[str, str]:
    """Submit a job (`submit()` answers 202) while the fake provider holds each `operation` call
    for `hold_s`; returns the job id and the worker host whose call the provider is holding, so
    a test can cut that host mid-call."""
    before = len(calls(cluster, operation))
    cluster.fake.set_latency(hold_s, operation)
    try:
        resp = submit()
        assert resp.status_code == 202, resp.text
        call = wait_for(lambda: next((c for c in calls(cluster, operation)[before:] if c["status"] is None), None),
                        90, f"a {operation} call to reach the provider")
    finally:
        cluster.fake.set_latency(0.0, operation)
    victim = cluster.host_of(call["client"])
    assert victim in ("worker1", "worker2"), call
    return resp.json()["job_id"], victim


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
    assert len(our_remote_voices(cluster, user["id"])) == 1


@pytest.mark.parametrize("side", ["switch", "host"])
def test_a_worker_cut_off_mid_perform_finishes_its_job_once(cluster, singer, side):
    """A worker host loses the store (broker, Redis, MongoDB and the providers behind it) while
    it synthesizes a note, for WORKER_CUT_S: its veth goes down at the switch (its packets
    vanish; it meets timeouts) or on the host itself (it meets "network is unreachable").
    RabbitMQ finds the host's connection dead by its missed heartbeats (BROKER_HEARTBEAT_S) and
    gives the message to the other worker host, which delivers the note while the first is
    still away. The note arrives once: one charge, one recording, and no voice leaked at the
    provider; the job is never failed."""
    user, headers = singer
    client = cluster.client
    before = len(calls(cluster, "synthesize"))
    job_id, victim = submit_held(cluster, "synthesize", 3.0, lambda: perform(client, headers, topic="running in the rain"))
    other = "worker2" if victim == "worker1" else "worker1"
    cut_at, cut_wall = time.monotonic(), time.time()
    done_in_cut = None
    with cluster.lab.partitioned(victim, side):
        while time.monotonic() - cut_at < WORKER_CUT_S:
            view = client.get(f"/jobs/{job_id}", headers=headers).json()
            assert view["state"] != "failed", view
            if done_in_cut is None and view["state"] == "succeeded":
                done_in_cut = time.monotonic() - cut_at
            time.sleep(0.5)
    healed_at = time.monotonic()
    job = wait_job(client, job_id, headers, timeout_s=150)
    done_at = time.monotonic()
    assert job["state"] == "succeeded", job["error"]
    assert_one_perform_effect(cluster.db, user["id"], job_id)
    assert len(our_remote_voices(cluster, user["id"])) == 1, our_remote_voices(cluster, user["id"])
    assert_no_voice_leaked(cluster)
    synths = calls(cluster, "synthesize")[before:]
    finishers = [cluster.host_of(c["client"]) for c in synths if c["status"] == 200]
    # the hand-over: the other host's first synthesis of the note, seconds after the cut
    handed = next((c["at"] - cut_wall for c in synths if cluster.host_of(c["client"]) == other), None)
    done = (f"during the cut, {done_in_cut:.1f} s after it" if done_in_cut
            else f"{done_at - healed_at:.1f} s after healing")
    print(f"[hosts] {victim} cut ({side} side) {healed_at - cut_at:.1f} s mid-synthesis; {other} took the job over "
          f"{handed if handed is None else round(handed, 1)} s after the cut; job done {done}; "
          f"synthesis answered to {finishers}; attempts {cluster.db['jobs'].find_one({'_id': job_id}).get('attempts')}",
          flush=True)
    # RabbitMQ gave the job to the other host while the first was away (about two heartbeats)
    assert handed is not None and handed < WORKER_CUT_S, (handed, finishers)


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
            # an answer, not a hang: within the store clients' timeouts (Redis 5 s per command,
            # MongoDB server selection 2 s), well inside a client's usual 30 s
            assert answers[path][1] < API_ANSWER_S, answers
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


def _producer(cluster):
    from shared.jobs.celery_app import producer_for

    return producer_for(cluster.settings.celery_broker_url)


def _ours(cluster) -> int:
    """How many of our voices the provider holds."""
    return len(our_remote_voices(cluster))


def _set_voice_limit(cluster, limit: int) -> None:
    """The provider's voice limit, as the pool learns it: from its upkeep task."""
    from shared.jobs.tasks import Task

    cluster.fake.configure(voice_limit=limit)
    _producer(cluster).send_task(Task.REFRESH_CAPACITY, queue="maintenance")
    wait_for(lambda: (cluster.db["pool_state"].find_one({"_id": "capacity"}) or {}).get("effective") == limit, 60,
             "the pool to learn its capacity")


@pytest.fixture()
def tight_pool(cluster) -> Iterator[int]:
    """Room for exactly one more voice; the pool's capacity, given back afterwards."""
    capacity = _ours(cluster) + 1
    _set_voice_limit(cluster, capacity)
    yield capacity
    _set_voice_limit(cluster, VOICE_LIMIT)


def test_a_worker_cut_off_past_the_creation_claim_cannot_overfill_the_pool(cluster, tight_pool):
    """The pool is one voice short of full. A worker host creating a voice (a new user's clone)
    is cut off for longer than its creation claim; meanwhile RabbitMQ finds its connection dead
    (missed heartbeats) and gives the clone's message to the other host, which waits for the
    first run's claim, takes it once it has lapsed and finishes the clone. The cut host then
    comes back and ends its own run. At no moment do our voices at the provider exceed the pool's capacity, and the
    user ends with one voice and one live record."""
    client, db = cluster.client, cluster.db
    capacity = tight_pool
    ours = partial(_ours, cluster)
    user, headers = cluster.users()
    before = len(calls(cluster, "create_voice"))
    job_id, victim = submit_held(cluster, "create_voice", 4.0, lambda: client.post(
        "/user/voice", headers=headers, files={"file": ("sample.mp3", samples.original(), "audio/mpeg")}))
    peak = ours()
    with cluster.lab.partitioned(victim):
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < CREATE_CLAIM_TTL_S + 1:  # the claim lapses
            peak = max(peak, ours())
            time.sleep(0.5)
        # the other host finishes the clone while the first is still away
        deadline = time.monotonic() + TAKEOVER_S
        while (view := client.get(f"/jobs/{job_id}", headers=headers).json())["state"] != "succeeded":
            assert view["state"] != "failed" and time.monotonic() < deadline, view
            peak = max(peak, ours())
            time.sleep(0.5)
        cut_s = time.monotonic() - cut_at
    # the cut host comes back and ends its own run (its answer from the provider arrives late,
    # or has timed out)
    wait_for(lambda: db["jobs"].find_one({"_id": job_id}).get("attempts", 0) >= 2, 60, "both runs to start")
    for _ in range(20):
        peak = max(peak, ours())
        time.sleep(0.3)
    live = list(db["voices"].find({"user_id": user["id"], "state": {"$in": ["creating", "ready", "evicting",
                                                                              "delete_failed"]}}))
    mine = our_remote_voices(cluster, user["id"])
    creators = {cluster.host_of(c["client"]) for c in calls(cluster, "create_voice")[before:]}
    print(f"[hosts] {victim} cut {cut_s:.1f} s while creating a voice; the other host finished the clone "
          f"{cut_s - CREATE_CLAIM_TTL_S - 1:.1f} s after the claim lapsed; create calls from {sorted(creators)}; "
          f"our voices at the provider peaked at {peak} of capacity {capacity}", flush=True)
    assert client.get(f"/jobs/{job_id}", headers=headers).json()["state"] == "succeeded"
    assert peak <= capacity, (peak, capacity)
    assert ours() <= capacity
    assert len(mine) == 1, mine
    assert len(live) == 1 and live[0]["state"] == "ready" and live[0]["voice_id"] == mine[0]["voice_id"], live
    assert_no_voice_leaked(cluster)


def _pool(cluster):
    """The voice pool as a worker builds it, from the test process (an operator on the back
    network): for setting the stage, never during the faults."""
    from shared.pool.service import VoicePool
    from shared.providers.factory import voice_provider
    from shared.stores import redis_client

    s = cluster.settings
    return VoicePool(cluster.db, redis_client(s), voice_provider(s, cluster.db), s)


def _consume(cluster, host: str, queue: str, on: bool) -> None:
    """Make a worker host stop (or start again) consuming a queue: Celery's remote control,
    as an operator would. Starting again waits until the host is back on the broker."""
    control = _producer(cluster).control
    node = f"{host}@{socket.gethostname()}"

    def ask():
        if on:
            return control.add_consumer(queue, destination=[node], reply=True, timeout=2)
        return control.cancel_consumer(queue, destination=[node], reply=True, timeout=2)

    wait_for(ask, 60, f"{node} to {'start' if on else 'stop'} consuming {queue}", every_s=1)


def test_a_worker_cut_off_past_its_lease_cannot_overfill_the_pool(cluster, singer):
    """The pool holds one voice, the singer's, and its capacity is 1. A worker host leases that
    voice for a note (the provider holds the synthesis) and is cut off; the cut outlasts its
    lease (made to lapse 5 s in: the real one is the perform time limit + 60 s). Meanwhile a new
    user's clone needs room in the full pool: the other host waits while the voice is leased,
    evicts it once the lease has lapsed (the cut host is still mid-synthesis with it) and
    creates the newcomer's. RabbitMQ then gives the note to the other host, which re-warms the
    singer's voice in place of the newcomer's and delivers it. Then the cut host comes back and
    ends its own run. At no moment do our voices at the
    provider exceed the capacity (sampled every 0.5 s; the fake provider's own limit stays at
    20, so it would not hide an overfill); the note is charged once and stored once."""
    from shared.pool.lru import LEASES
    from shared.pool.service import CAPACITY_KEY

    client, db = cluster.client, cluster.db
    user, headers = singer
    pool = _pool(cluster)
    r = pool.r
    ours = partial(_ours, cluster)
    me = db["users"].find_one({"_id": ObjectId(user["id"])})
    voice = me.get("voice_clone_id")
    assert voice and me.get("voice_state") == "ready", me.get("voice_state")
    # the stage: the singer's voice alone in the pool, and no room for another
    pool.order.lease(voice, "test:pin", 60)
    try:
        while ours() > 1:
            assert pool.evict_one(reason="test"), "an idle voice to evict"
    finally:
        pool.order.release(voice, "test:pin")
    _newcomer, newcomer_headers = cluster.users()
    capacity = 1
    r.set(CAPACITY_KEY, capacity)  # what the pool learns when the provider's limit falls
    try:
        before = len(calls(cluster, "synthesize"))
        job_id, victim = submit_held(cluster, "synthesize", 4.0, lambda: perform(client, headers, topic="a long lease"))
        peak = ours()
        lease_key, holder = LEASES + voice, f"perform:{job_id}"
        # The newcomer's clone must go to the other host: were it sent to the cut host's consumer
        # (RabbitMQ takes turns), it would come back only with the note, once the cut host's
        # connection is found dead, and the note's new run would let go of the lease first.
        _consume(cluster, victim, "clone", False)
        with cluster.lab.partitioned(victim):
            cut_at, cut_wall = time.monotonic(), time.time()
            expiry = r.zscore(lease_key, holder)
            # the lease is the perform time limit + 60 s (shared/pool/service.py)
            assert expiry is not None and expiry - cut_wall > TIME_LIMIT_S, (expiry, cut_wall)
            # The cut outlasts the lease: rather than wait its 180 s, the lease is made to lapse
            # LEASE_LEFT_S into the cut (as the duplicate-delivery test moves a delivery time).
            # The cut host's run is still alive then, which its hard time limit (shorter than
            # the lease) would never allow: the harsher case.
            r.zadd(lease_key, {holder: cut_wall + LEASE_LEFT_S})
            resp = client.post("/user/voice", headers=newcomer_headers,
                               files={"file": ("sample.mp3", samples.original(), "audio/mpeg")})
            assert resp.status_code == 202, resp.text
            clone_id = resp.json()["job_id"]
            deadline = time.monotonic() + LEASE_TAKEOVER_S
            while True:
                states = {j: client.get(f"/jobs/{j}", headers=h).json()["state"]
                          for j, h in ((job_id, headers), (clone_id, newcomer_headers))}
                assert "failed" not in states.values(), states
                peak = max(peak, ours())
                if set(states.values()) == {"succeeded"} and time.monotonic() - cut_at > LEASE_LEFT_S + 1:
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.5)
            cut_s = time.monotonic() - cut_at
        # the cut host is back: whatever its run still does, it does now
        for _ in range(20):
            peak = max(peak, ours())
            time.sleep(0.5)
    finally:
        r.set(CAPACITY_KEY, VOICE_LIMIT)
        with contextlib.suppress(AssertionError):
            _consume(cluster, victim, "clone", True)
    evicted = db["voices"].find_one({"voice_id": voice})
    synths = calls(cluster, "synthesize")[before:]
    other = "worker2" if victim == "worker1" else "worker1"
    # the note's synthesis on the other host (the clone's calibration phrase is another voice's)
    singers = {d["voice_id"] for d in db["voices"].find({"user_id": user["id"]}, {"voice_id": 1})}
    handed = next((c["at"] - cut_wall for c in synths if cluster.host_of(c["client"]) == other
                   and c.get("details", {}).get("voice_id") in singers), None)
    freed = (evicted["deleted_at"].timestamp() - cut_wall) if evicted.get("deleted_at") else None
    print(f"[hosts] {victim} cut {cut_s:.1f} s holding a lease on the only voice (capacity {capacity}); the lease "
          f"lapsed {LEASE_LEFT_S} s in; {other} evicted the voice {freed if freed is None else round(freed, 1)} s in "
          f"for a new user's clone, and took the note over {handed if handed is None else round(handed, 1)} s in; "
          f"our voices at the provider peaked at {peak}; attempts {db['jobs'].find_one({'_id': job_id}).get('attempts')}",
          flush=True)
    assert peak <= capacity, (peak, capacity)
    # the leased voice was not evicted before its lease lapsed
    assert freed is not None and freed >= LEASE_LEFT_S, freed
    assert client.get(f"/jobs/{job_id}", headers=headers).json()["state"] == "succeeded"
    assert client.get(f"/jobs/{clone_id}", headers=newcomer_headers).json()["state"] == "succeeded"
    assert_one_perform_effect(db, user["id"], job_id)
    assert_no_voice_leaked(cluster)


def _batch(cluster, user: dict, headers: dict, label: str) -> list[float]:
    """BATCH notes submitted at once, each delivered once; each job's seconds from submission
    to its end."""
    client = cluster.client
    ids = []
    for i in range(BATCH):
        resp = perform(client, headers, topic=f"{label} walk number {i + 1}")
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["job_id"])
    for job_id in ids:
        job = wait_job(client, job_id, headers, timeout_s=180)
        assert job["state"] == "succeeded", (label, job["error"])
    for job_id in ids:
        assert_one_perform_effect(cluster.db, user["id"], job_id)
    docs = {d["_id"]: d for d in cluster.db["jobs"].find({"_id": {"$in": ids}})}
    return [(docs[i]["finished_at"] - docs[i]["created_at"]).total_seconds() for i in ids]


def test_every_note_completes_over_a_slow_lossy_network(cluster, singer):
    """200 ms of delay and 5 % loss on what each worker host sends to the store (as netem on
    the workers' interfaces would): every note of a batch still arrives, once each."""
    user, headers = singer
    plain = _batch(cluster, user, headers, "plain")
    with contextlib.ExitStack() as stack:
        wires = {host: stack.enter_context(cluster.lab.impaired(host, DELAY_MS, LOSS, cluster.logs / f"wire-{host}.log",
                                                                seed=i + 1))
                 for i, host in enumerate(("worker1", "worker2"))}
        slow = _batch(cluster, user, headers, "slow")
    print(f"[hosts] batch of {BATCH} notes, seconds from submission to delivery: plain "
          f"{sorted(round(t, 1) for t in plain)} (median {statistics.median(plain):.1f}); with {DELAY_MS} ms and "
          f"{LOSS:.0%} loss on the workers' side {sorted(round(t, 1) for t in slow)} (median "
          f"{statistics.median(slow):.1f}); frames {wires}", flush=True)
    assert all(w.get("dropped", 0) > 0 for w in wires.values()), wires  # the loss really happened
