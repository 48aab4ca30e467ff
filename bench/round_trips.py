"""Benchmark: database round trips per submit and per perform job, counted, not timed.

MongoDB commands are counted with pymongo command monitoring on the client every store user
of these settings shares (`shared.stores.count_round_trips`); Redis round trips by counting
what redis-py sends on its connections (a pipeline is one). The API is served in this process
and the perform job body runs here through the real Celery task function, on a Redis database
that no worker consumes, against the stack's fake ElevenLabs and Gemini. Counts do not depend
on the machine's load, so they are a stable regression check (the same targets are asserted in
`tests/perform/test_round_trips.py`).

Baseline, in the same run: the same submit and job with the two savings of issue 15 turned
off: the user read fresh on every request (no recent-users cache) and every stage written to
MongoDB (the job store not holding its runs).
Targets: MongoDB <= 1 per submit and <= 12 per perform job on a warm voice.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

import httpx
from bson import ObjectId

from bench.harness import Stack, log, make_users, result

NAME = "round_trips"
SUBMIT_MAX, PERFORM_MAX = 1, 12
NO_CONSUMER_DB = 9


class RedisRoundTrips:
    """Counts packed sends on redis-py's sync connections in this process (one per round trip)."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self._cls, self._original = AbstractConnection, AbstractConnection.send_packed_command
        self._lock = threading.Lock()
        self.count = 0
        counter = self

        def counted(conn, command, check_health=True):
            with counter._lock:
                counter.count += 1
            return counter._original(conn, command, check_health)

        AbstractConnection.send_packed_command = counted

    def take(self) -> int:
        with self._lock:
            taken, self.count = self.count, 0
        return taken

    def close(self) -> None:
        self._cls.send_packed_command = self._original


@contextlib.contextmanager
def _savings_off(app):
    """The baseline: no recent-users cache, stages written to MongoDB."""
    from shared.jobs.service import JobStore
    from shared.users.recent import RecentUsers

    class _Forgetful(dict):
        def __setitem__(self, key, value):  # the store never holds a run: every stage is durable
            pass

    original_init = JobStore.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._running = _Forgetful()

    JobStore.__init__ = init
    cache, app.state.recent_users = app.state.recent_users, RecentUsers(ttl_s=0)
    try:
        yield
    finally:
        JobStore.__init__ = original_init
        app.state.recent_users = cache


def _one_note(client: httpx.Client, headers: dict, counters, topic: str) -> dict:
    from workers.tasks.perform import perform

    mongo, redis_trips = counters
    mongo.take(), redis_trips.take()
    resp = client.post("/perform", headers=headers, json={"routine_type": "gratitude", "topic": topic})
    assert resp.status_code == 202, resp.text
    submit = {"mongo": len(mongo.take()), "redis": redis_trips.take()}
    perform.run(resp.json()["job_id"])
    commands = mongo.take()
    job = {"mongo": len(commands), "redis": redis_trips.take(), "mongo_commands": dict(Counter(commands))}
    state = client.get(f"/jobs/{resp.json()['job_id']}", headers=headers).json()["state"]
    assert state == "succeeded", state
    return {"submit": submit, "perform": job}


def run(stack: Stack, quick: bool) -> dict:
    from api.main import create_app
    from shared import stores
    from shared.bootstrap import ensure_indexes
    from tests.fakes.server import serve
    from workers import runtime

    base = stack.settings()
    settings = stack.settings(redis_url=base.redis_url.rsplit("/", 1)[0] + f"/{NO_CONSUMER_DB}",
                              mongo_db="nvbench_roundtrips")
    ensure_indexes(stores.mongo_db(settings))
    stores.redis_client(settings).flushdb()
    user = make_users(stack, 1)[0]  # made in the stack's database, with a voice: copy both over
    stores.mongo_db(settings)["users"].insert_one(stack.db()["users"].find_one({"_id": ObjectId(user.id)}))
    stores.mongo_db(settings)["voices"].insert_many(list(stack.db()["voices"].find({"user_id": user.id})))
    headers = {"Authorization": f"Bearer {user.token}"}
    redis_trips = RedisRoundTrips()
    original_settings = runtime.get_settings
    runtime.get_settings = lambda: settings
    try:
        app = create_app(settings)
        with stores.count_round_trips(settings) as mongo, serve(app) as api, \
                httpx.Client(base_url=api, timeout=60) as client:
            counters = (mongo, redis_trips)
            _one_note(client, headers, counters, "a first walk in the snow")  # warm: pool order, caches
            measured = _one_note(client, headers, counters, "my sister's wedding")
            with _savings_off(app):
                _one_note(client, headers, counters, "the garden in spring")
                baseline = _one_note(client, headers, counters, "a quiet morning")
    finally:
        runtime.get_settings = original_settings
        redis_trips.close()
    met = measured["submit"]["mongo"] <= SUBMIT_MAX and measured["perform"]["mongo"] <= PERFORM_MAX
    total, base_total = (measured["submit"]["mongo"] + measured["perform"]["mongo"],
                         baseline["submit"]["mongo"] + baseline["perform"]["mongo"])
    log(f"{NAME}: MongoDB submit {measured['submit']['mongo']} perform {measured['perform']['mongo']} "
        f"(baseline {baseline['submit']['mongo']} / {baseline['perform']['mongo']}); Redis submit "
        f"{measured['submit']['redis']} perform {measured['perform']['redis']}")
    return result(
        NAME, value=total, baseline=base_total, ratio=total / base_total if base_total else None,
        unit="MongoDB round trips (submit + perform job)",
        target=f"MongoDB <= {SUBMIT_MAX} per submit and <= {PERFORM_MAX} per perform job", met=met,
        measured=measured, baseline_counts=baseline,
        note="counted with command monitoring on a warm voice; baseline = no user cache, stages in MongoDB")
