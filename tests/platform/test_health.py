"""Liveness, readiness (canaries per queue) and behaviour with stores down."""

from __future__ import annotations

import time

import httpx
import pytest

from cli import devstack
from shared.config import QUEUES
from tests.conftest import Workers, api_client, make_settings, process_env, wait_ready


def test_health_names_providers_and_model(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["providers"] == {"voice": "local", "text": "local"}
    assert body["model_cost_factor"] == 1.0
    assert body["version"]


def test_ready_when_every_queue_is_consumed(client, workers):
    resp = client.get("/health/ready")
    assert resp.status_code == 200, resp.text
    checks = resp.json()["checks"]
    assert checks["mongo"]["ok"] and checks["redis"]["ok"]
    assert set(checks["queues"]) == {"clone", "perform", "cleanup", "maintenance"}
    assert all(q["ok"] for q in checks["queues"].values())


@pytest.fixture()
def own_redis(tmp_path):
    """A Redis only this test uses, so it can be stopped and started again on the same port."""
    port = devstack.free_port()
    proc, url = devstack.start_redis(tmp_path / "redis", port, appendonly=True)
    state = {"proc": proc, "url": url, "port": port}

    def stop():
        devstack.stop_process(state["proc"], grace_s=5)

    def start():
        state["proc"], _ = devstack.start_redis(tmp_path / "redis", port, appendonly=True)

    state["stop"], state["start"] = stop, start
    yield state
    stop()


def _serve(settings):
    from api.main import create_app
    from tests.fakes.server import serve

    return serve(create_app(settings))


def test_ready_fails_when_a_queue_has_no_worker(own_redis, base_env, tmp_path, db):
    env = {**base_env, "REDIS_URL": own_redis["url"]}
    settings = make_settings(env, readiness_timeout_s=3)
    pool = Workers(process_env(env), tmp_path)
    pool.start("partial", ("clone", "perform", "cleanup"), concurrency=1)
    try:
        from shared.stores import redis_client

        wait_ready(redis_client(settings), ("clone", "perform", "cleanup"))
        with _serve(settings) as url:
            resp = httpx.get(f"{url}/health/ready", timeout=30)
        assert resp.status_code == 503
        body = resp.json()
        assert body["error"] == "SERVICE_UNAVAILABLE"
        assert "queue:maintenance" in body["message"]
        assert body["checks"]["queues"]["maintenance"]["ok"] is False
        assert body["checks"]["queues"]["clone"]["ok"] is True
    finally:
        pool.stop_all()


def test_redis_down_gives_503_and_recovers(own_redis, base_env, new_user, db):
    env = {**base_env, "REDIS_URL": own_redis["url"]}
    settings = make_settings(env, readiness_timeout_s=1)
    with _serve(settings) as url, api_client(url, timeout=30) as c:
        from tests.conftest import UserFactory

        users = UserFactory(c, db)
        admin, headers = users(role="admin")
        job = c.post("/admin/diagnostics", headers=headers)
        assert job.status_code == 202
        job_id = job.json()["job_id"]

        own_redis["stop"]()
        for method, path in (("GET", f"/jobs/{job_id}"), ("POST", "/admin/diagnostics"),
                             ("GET", "/health/ready")):
            resp = c.request(method, path, headers=headers)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["error"] == "SERVICE_UNAVAILABLE"
        # the API itself stays up, and MongoDB-only routes keep working
        assert c.get("/health").status_code == 200
        assert c.get("/user/me", headers=headers).status_code == 200
        # a job refused while the broker is down is not left pending
        jobs = list(db["jobs"].find({"user_id": admin["id"]}))
        assert len(jobs) == 2
        assert [j["state"] for j in jobs if j["_id"] != job_id] == ["failed"]

        own_redis["start"]()
        deadline = time.monotonic() + 20
        while True:
            resp = c.get(f"/jobs/{job_id}", headers=headers)
            if resp.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert resp.status_code == 200, resp.text
        assert c.post("/admin/diagnostics", headers=headers).status_code == 202


def test_mongo_down_gives_503_and_recovers(redis_url, base_env, tmp_path, client, new_user):
    port = devstack.free_port()
    proc, mongo_url = devstack.start_mongo(tmp_path / "mongo", port)
    env = {**base_env, "MONGO_URL": mongo_url}
    settings = make_settings(env, mongo_timeout_ms=1000)
    from shared.bootstrap import ensure_indexes
    from shared.stores import mongo_db

    ensure_indexes(mongo_db(settings))
    try:
        with _serve(settings) as url, api_client(url, timeout=30) as c:
            from tests.conftest import UserFactory

            users = UserFactory(c, mongo_db(settings))
            _, headers = users()
            assert c.get("/user/me", headers=headers).status_code == 200
            devstack.stop_process(proc, grace_s=5)
            for path in ("/user/me", "/user/settings"):
                resp = c.get(path, headers=headers)
                assert resp.status_code == 503, resp.text
                assert resp.json()["error"] == "SERVICE_UNAVAILABLE"
            resp = c.post("/auth/login", json={"username": "x" * 5, "password": "y" * 8})
            assert resp.status_code == 503
            proc, _ = devstack.start_mongo(tmp_path / "mongo", port)
            deadline = time.monotonic() + 30
            while c.get("/user/me", headers=headers).status_code != 200:
                assert time.monotonic() < deadline, "API did not recover after MongoDB came back"
                time.sleep(0.3)
    finally:
        devstack.stop_process(proc, grace_s=5)


def test_concurrent_readiness_callers_share_one_round_of_canaries(base_env, redis_url, db):
    """Sixty callers for two seconds: one round of canaries, not one per call."""
    import concurrent.futures

    import redis as redis_lib

    broker = redis_url.rsplit("/", 1)[0] + "/7"  # no worker consumes here: every canary stays queued
    redis_lib.Redis.from_url(broker).flushdb()
    settings = make_settings({**base_env, "REDIS_URL": broker}, readiness_timeout_s=0.5, readiness_cache_s=5)
    with _serve(settings) as url:
        clients = [api_client(url, timeout=30) for _ in range(60)]  # made up front: not cheap
        deadline = time.monotonic() + 2

        def keep_asking(c):
            codes = [c.get("/health/ready").status_code]
            while time.monotonic() < deadline:
                codes.append(c.get("/health/ready").status_code)
            c.close()
            return codes

        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            codes = [code for batch in pool.map(keep_asking, clients) for code in batch]
    assert len(codes) >= 60 and set(codes) == {503}
    published = redis_lib.Redis.from_url(broker)
    assert sum(published.llen(q) for q in QUEUES) == len(QUEUES)  # one canary per queue, once
