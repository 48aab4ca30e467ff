"""The voice pool against a fake ElevenLabs that refuses the 4th voice (limit 3)."""

from __future__ import annotations

import concurrent.futures
import random
from datetime import timedelta

import pytest
from bson import ObjectId

from shared.errors import VoiceLimitReached
from tests import samples
from tests.conftest import make_settings, pool_for, provider_stack, wait_job
from tests.perform.helpers import perform, user_with_voice

LIMIT = 3


@pytest.fixture(scope="module")
def stack(base_env, redis_url, tmp_path_factory):
    with provider_stack(base_env, redis_url, tmp_path_factory.mktemp("pool"), redis_db=2, voice_limit=LIMIT,
                        concurrency=4, POOL_CAPACITY=str(LIMIT)) as s:
        yield s


def ours_at_provider(stack) -> set[str]:
    return {v.voice_id for v in stack.fake.voices if v.category == "cloned" and v.name.startswith("nv-")}


def holding(stack) -> list[dict]:
    return list(stack.db["voices"].find({"slot": {"$exists": True}}))


def limit_refusals(stack) -> int:
    return sum(1 for c in stack.fake.calls if c.operation == "create_voice" and c.status == 400)


def assert_in_step(stack) -> None:
    """No orphan, no leak: what the provider holds is exactly what our records hold."""
    remote = ours_at_provider(stack)
    records = {r["voice_id"] for r in holding(stack)}
    assert remote == records, (remote ^ records)
    assert len(remote) <= LIMIT


@pytest.fixture(scope="module")
def twelve_users(stack):
    users = [user_with_voice(stack.client, stack.users) for _ in range(12)]
    return users


def test_twelve_users_performing_concurrently_never_hit_the_limit(stack, twelve_users):
    order = list(twelve_users)
    random.Random(7).shuffle(order)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda u: perform(stack.client, u[1], topic="the pool"), order))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses if r.status_code != 202]
    jobs = [wait_job(stack.client, r.json()["job_id"], u[1], timeout_s=300) for r, u in zip(responses, order)]
    assert all(j["state"] == "succeeded" for j in jobs), [j["error"] for j in jobs if j["state"] != "succeeded"]
    assert stack.fake.max_voices_seen <= LIMIT
    assert limit_refusals(stack) == 0
    assert any(j["result"]["rewarmed"] for j in jobs)
    assert_in_step(stack)


def test_status_shows_capacity_lru_and_evictions(stack, twelve_users):
    admin, headers = stack.users(role="admin")
    status = stack.client.get("/admin/voice-pool/status", headers=headers).json()
    assert status["capacity"]["effective"] == LIMIT
    assert status["warm"] <= LIMIT and status["size"] <= LIMIT
    assert status["evictions"] >= 1 and status["creations"] >= 12
    assert len(status["lru"]) == status["warm"]
    assert all(entry["last_used_at"] for entry in status["lru"])
    _, user_headers = stack.users()
    assert stack.client.get("/admin/voice-pool/status", headers=user_headers).status_code == 403


def test_same_user_concurrent_performs_create_one_voice(stack, twelve_users):
    user, headers = twelve_users[0]
    pool = pool_for(stack.settings, stack.db)
    # make sure this user's voice is cold
    meta = stack.client.get("/user/voice/meta", headers=headers).json()
    if meta["voice_clone_id"]:
        pool.provider.delete_voice(meta["voice_clone_id"])
        pool.voice_lost(meta["voice_clone_id"])
    created_before = stack.fake.created_total
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        responses = list(ex.map(lambda i: perform(stack.client, headers, topic=f"same user {i}"), range(4)))
    jobs = [wait_job(stack.client, r.json()["job_id"], headers, timeout_s=300) for r in responses]
    assert all(j["state"] == "succeeded" for j in jobs)
    assert len({j["result"]["voice_id"] for j in jobs}) == 1
    assert stack.fake.created_total - created_before == 1
    reconcile_now(stack)
    assert_in_step(stack)


def reconcile_now(stack, **kw) -> dict:
    from shared.pool.maintenance import reconcile

    return reconcile(pool_for(stack.settings, stack.db), **kw)


def test_delete_failures_are_reconciled(stack, twelve_users):
    stack.fake.set_failure_rate("delete_voice", 0.3, 503, seed=11)
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            responses = list(ex.map(lambda u: perform(stack.client, u[1], topic="flaky deletes"), twelve_users))
        jobs = [wait_job(stack.client, r.json()["job_id"], u[1], timeout_s=300)
                for r, u in zip(responses, twelve_users)]
        assert all(j["state"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    finally:
        stack.fake.clear_faults()
    assert stack.fake.max_voices_seen <= LIMIT
    report = reconcile_now(stack)
    assert not report["errors"]
    assert_in_step(stack)
    assert stack.db["voices"].count_documents({"state": "delete_failed"}) == 0


def test_pool_keys_lost_in_redis_are_rebuilt(stack, twelve_users):
    from shared.stores import redis_client

    r = redis_client(stack.settings)
    for key in r.scan_iter("nv:pool:*"):
        r.delete(key)
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        responses = list(ex.map(lambda u: perform(stack.client, u[1], topic="after the flush"), twelve_users[:6]))
    jobs = [wait_job(stack.client, r_.json()["job_id"], u[1], timeout_s=300)
            for r_, u in zip(responses, twelve_users[:6])]
    assert all(j["state"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    assert stack.fake.max_voices_seen <= LIMIT
    assert r.exists("nv:pool:built")
    reconcile_now(stack)
    assert_in_step(stack)


def test_voice_created_before_a_crash_is_adopted_or_deleted(stack):
    from shared.pool import records

    pool = pool_for(stack.settings, stack.db)
    user, _ = stack.users()
    # make room so the test controls one free slot
    while records.slots_used(stack.db, "elevenlabs") >= LIMIT:
        assert pool.evict_one()
    # 1) a run died right after the provider created the voice: its redelivery adopts it
    record, fresh = records.begin_creation(stack.db, provider="elevenlabs", user_id=user["id"], sha256="a" * 64,
                                           job_id="crash-job-1", capacity=LIMIT)
    assert fresh
    remote_id = pool.provider.create_voice(record["name"], samples.original(), {})
    created = stack.fake.created_total
    adopted = pool.create_voice(user["id"], "a" * 64, samples.original(), job_key="crash-job-1")
    assert adopted["voice_id"] == remote_id and stack.fake.created_total == created
    # 2) a run died the same way and nobody came back: reconciliation deletes it, freeing the slot
    pool.evict_one()
    record2, _ = records.begin_creation(stack.db, provider="elevenlabs", user_id=user["id"], sha256="b" * 64,
                                        job_id="crash-job-2", capacity=LIMIT)
    orphan = pool.provider.create_voice(record2["name"], samples.original(), {})
    stack.db["voices"].update_one({"_id": record2["_id"]}, {"$set": {"created_at": record2["created_at"]
                                                                     - timedelta(hours=2)}})
    report = reconcile_now(stack, grace=timedelta(minutes=30))
    assert report["orphans_deleted"] >= 1
    assert stack.fake.voice(orphan) is None
    assert stack.db["voices"].find_one({"_id": record2["_id"]})["state"] == "deleted"
    assert_in_step(stack)


def test_orphan_with_our_name_and_no_record_is_deleted(stack):
    pool = pool_for(stack.settings, stack.db)
    while len(ours_at_provider(stack)) > LIMIT - 2:  # room for the two voices seeded below
        assert pool.evict_one()
    name = f"nv-{ObjectId()}-{'c' * 12}-abcdef"
    orphan = stack.fake.seed_voice(name)
    foreign = stack.fake.seed_voice("someone elses voice")
    report = reconcile_now(stack)
    assert report["orphans_deleted"] >= 1
    assert stack.fake.voice(orphan) is None
    assert stack.fake.voice(foreign) is not None  # never touch what is not ours
    pool.provider.delete_voice(foreign)  # give its slot back


def test_admin_reconcile_endpoint_runs_a_job(stack):
    _, headers = stack.users(role="admin")
    resp = stack.client.post("/admin/reconcile", headers=headers)
    assert resp.status_code == 202
    job = wait_job(stack.client, resp.json()["job_id"], headers)
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["listed"] >= 0 and "orphans_deleted" in job["result"]


def test_leased_voice_is_never_evicted_and_disabled_pool_fails_clearly(stack, base_env):
    from shared.stores import redis_client

    pool = pool_for(stack.settings, stack.db)
    order = pool.order
    voices = [v for v, _ in order.order()]
    assert voices, "the pool should hold warm voices by now"
    for v in voices:
        order.lease(v, "test-holder", ttl_s=60)
    try:
        assert pool.evict_one() is False  # every voice is in use: nothing may be evicted
    finally:
        for v in voices:
            order.release(v, "test-holder")

    disabled = make_settings({**base_env, "REDIS_URL": stack.settings.redis_url, "MONGO_DB": stack.settings.mongo_db,
                              "VOICE_PROVIDER": "elevenlabs", "ELEVEN_LABS_API_KEY": "fake-eleven-key",
                              "ELEVEN_LABS_BASE_URL": stack.settings.eleven_labs_base_url,
                              "POOL_CAPACITY": str(LIMIT), "PROVIDER_POOL_ENABLED": "false"})
    off = pool_for(disabled, stack.db)
    while len(ours_at_provider(stack)) < LIMIT:
        user, _ = stack.users()
        off.create_voice(user["id"], "d" * 64, samples.original(), job_key=f"fill-{user['id']}")
    user, _ = stack.users()
    with pytest.raises(VoiceLimitReached) as info:
        off.create_voice(user["id"], "e" * 64, samples.original(), job_key="over-the-limit")
    assert "disabled" in info.value.message
    assert stack.fake.max_voices_seen <= LIMIT and limit_refusals(stack) == 0
    assert redis_client(stack.settings).ping()


def test_month_rollover_resets_quotas_once(stack):
    from shared.clock import period_of
    from shared.pool.maintenance import reset_quotas
    from shared.quota.service import reserve, settle

    user, headers = stack.users()
    oid = ObjectId(user["id"])
    stack.db["users"].update_one({"_id": oid}, {"$set": {"quota_period": "2000-01", "charCount": 3999,
                                                         "charsUsedRaw": 3999}})
    assert reset_quotas(stack.db) >= 1
    me = stack.client.get("/user/me", headers=headers).json()
    assert me["charCount"] == 0 and me["quotaPeriod"] == period_of()
    user_doc = stack.db["users"].find_one({"_id": oid})
    held = reserve(stack.db, user_doc, "job-after-reset", longest=300, shortest=50, model="m", provider="p")
    settle(stack.db, oid, "job-after-reset", held, raw=100, effective=100, provider_cost=None)
    assert reset_quotas(stack.db) == 0  # a second beat in the same period changes nothing
    assert stack.client.get("/user/me", headers=headers).json()["charCount"] == 100
