"""Two beats at once (a second beat started by mistake, a failover that overlaps): every periodic
upkeep task fires twice at the same moment. Each effect must still happen exactly once: quotas
reset once per period, a due voice deleted once, reconciliation acting once per orphan.

The maintenance tasks are sent twice concurrently through the broker to a worker with two pool
processes (what two beats do); the quota reset, whose tasks return nothing, is also run from two
threads at once so the number of resets can be counted."""

from __future__ import annotations

import concurrent.futures
import threading
from datetime import timedelta

import pytest
from bson import ObjectId

from tests import samples
from tests.conftest import pool_for
from tests.reliability.chaos import chaos_stack, provider_calls, wait_for


@pytest.fixture(scope="module")
def stack(base_env, tmp_path_factory):
    with chaos_stack(base_env, tmp_path_factory.mktemp("beats"), concurrency=2) as s:
        yield s


def fire_twice(stack, task: str) -> None:
    """Two producers send the same periodic task at the same instant, as two beats would."""
    from shared.jobs.celery_app import producer_for

    app = producer_for(stack.settings.redis_url)
    barrier = threading.Barrier(2)

    def send():
        barrier.wait()
        app.send_task(task, queue="maintenance")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: send(), range(2)))


def test_quota_reset_runs_once_per_user_when_two_beats_fire(stack):
    from shared.pool.maintenance import reset_quotas
    from shared.clock import period_of

    users = [stack.users()[0] for _ in range(12)]
    oids = [ObjectId(u["id"]) for u in users]
    stack.db["users"].update_many({"_id": {"$in": oids}}, {"$set": {
        "quota_period": "2000-01", "charCount": 777, "charsUsedRaw": 777, "charged_jobs": ["old-job"]}})
    eligible = stack.db["users"].count_documents({"quota_period": {"$ne": period_of()}})
    barrier = threading.Barrier(2)

    def beat():
        barrier.wait()
        return reset_quotas(stack.db)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(lambda _: beat(), range(2)))
    # every user in an old period was reset, each exactly once between the two runs
    assert sum(counts) == eligible >= len(users), counts
    for doc in stack.db["users"].find({"_id": {"$in": oids}}):
        assert doc["quota_period"] == period_of() and doc["charCount"] == 0 and doc["charged_jobs"] == []
    # and through the broker: two beats' tasks at once change nothing more
    before = {d["_id"]: d["quota_reset_at"] for d in stack.db["users"].find({"_id": {"$in": oids}})}
    fire_twice(stack, "maintenance.reset_quotas")
    wait_for(lambda: stack.client.get("/health/ready").status_code == 200, 30, "the maintenance queue to drain")
    after = {d["_id"]: d["quota_reset_at"] for d in stack.db["users"].find({"_id": {"$in": oids}})}
    assert after == before


def test_due_deletions_swept_by_two_beats_are_deleted_once(stack):
    from shared.pool import records

    pool = pool_for(stack.settings, stack.db)
    due = []
    for i in range(4):
        user, _ = stack.users()
        record = pool.create_voice(user["id"], f"{i:064x}", samples.original(), job_key=f"sweep-{user['id']}")
        records.schedule_deletion(stack.db, record["_id"], timedelta(0), reason="replaced")
        due.append(record)
    deletes_before = len(provider_calls(stack.fake, "delete_voice"))
    fire_twice(stack, "maintenance.sweep_deletions")
    ids = [r["_id"] for r in due]
    wait_for(lambda: stack.db["voices"].count_documents({"_id": {"$in": ids}, "state": "deleted"}) == len(due), 60,
             "every due voice to be deleted")
    wait_for(lambda: stack.fake.in_flight() == 0, 10, "the provider to go idle")
    deletes = provider_calls(stack.fake, "delete_voice", since=0)[deletes_before:]
    assert len(deletes) == len(due), [(c.path, c.status) for c in deletes]
    assert all(c.status == 200 for c in deletes)
    assert all(stack.fake.voice(r["voice_id"]) is None for r in due)


def test_reconciliation_fired_twice_acts_once(stack):
    from shared.pool import records

    pool = pool_for(stack.settings, stack.db)
    owner, _ = stack.users()
    # orphans: our naming scheme, no record (a crash right after the provider created them)
    orphans = [stack.fake.seed_voice(records.remote_name(ObjectId(), owner["id"], f"{i:064x}"))
               for i in range(3)]
    # a voice we hold that vanished at the provider (deleted behind our back)
    lost = pool.create_voice(owner["id"], "f" * 64, samples.original(), job_key=f"lost-{owner['id']}")
    pool.provider.delete_voice(lost["voice_id"])
    stack.db["voices"].update_one({"_id": lost["_id"]}, {"$set": {
        "ready_at": lost["created_at"] - timedelta(hours=1), "created_at": lost["created_at"] - timedelta(hours=1)}})
    deletes_before = len(provider_calls(stack.fake, "delete_voice"))
    fire_twice(stack, "maintenance.reconcile")
    wait_for(lambda: all(stack.fake.voice(v) is None for v in orphans)
             and stack.db["voices"].find_one({"_id": lost["_id"]})["state"] == "missing", 60,
             "reconciliation to delete the orphans and mark the lost voice")
    wait_for(lambda: stack.fake.in_flight() == 0, 10, "the provider to go idle")
    wait_for(lambda: stack.client.get("/health/ready").status_code == 200, 30, "the maintenance queue to drain")
    deletes = [c for c in provider_calls(stack.fake, "delete_voice")[deletes_before:]]
    # one delete per orphan: the second run found nothing left to do (or was locked out)
    assert len(deletes) == len(orphans), [(c.path, c.status) for c in deletes]
    assert all(c.status == 200 for c in deletes)
    assert stack.db["voices"].count_documents({"_id": lost["_id"], "slot": {"$exists": True}}) == 0
