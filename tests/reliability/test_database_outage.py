"""The database (the MongoDB-wire server, its own instance on a fixed port and data directory)
stops with jobs in flight and comes back. While it is down the API answers 503 and stays up;
the workers retry the jobs that met the outage, with backoff; nothing accepted is lost and
nothing is charged or stored twice."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_job
from tests.reliability.chaos import (
    RestartableMongo,
    assert_one_perform_effect,
    chaos_stack,
    perform,
    user_with_voice,
    wait_for,
)

ACCEPTED = 6


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mongo-outage")
    server = RestartableMongo(tmp / "data", tmp / "mongo.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(base_env, tmp_path_factory, mongo):
    with chaos_stack(base_env, tmp_path_factory.mktemp("dbdown"), concurrency=2, mongo_url=mongo.url,
                     MONGO_TIMEOUT_MS="1000") as s:
        yield s


def test_database_outage_with_jobs_in_flight_loses_nothing(stack, mongo):
    user, headers = user_with_voice(stack, monthly_limit=1_000_000)
    stack.fake.set_latency(2, "synthesize")
    try:
        accepted = []
        for i in range(ACCEPTED):
            resp = perform(stack, headers, topic=f"outage number {i}")
            assert resp.status_code == 202, resp.text
            accepted.append(resp.json()["job_id"])
        wait_for(lambda: any(c.operation == "synthesize" and c.status is None for c in stack.fake.calls), 30,
                 "a job to be running")
        down_at = time.monotonic()
        mongo.stop()
        for method, path in (("GET", "/user/me"), ("POST", "/perform"), ("GET", "/recordings")):
            resp = stack.client.request(method, path, headers=headers,
                                        json={"routine_type": "gratitude", "topic": "x"} if method == "POST" else None)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["error"] == "SERVICE_UNAVAILABLE"
        assert stack.client.get("/health").status_code == 200
        ready = stack.ready()
        assert ready.status_code == 503 and ready.json()["checks"]["mongo"]["ok"] is False
        # the workers meet the outage: jobs are retried with backoff, not failed
        wait_for(lambda: "store unavailable; retrying" in stack.workers.log("w1"), 30,
                 "a worker to retry a job over the outage")
        time.sleep(3)
    finally:
        stack.fake.set_latency(0, "synthesize")
    mongo.start()
    up_at = time.monotonic()
    wait_for(lambda: stack.client.get("/user/me", headers=headers).status_code == 200, 60,
             "the API to answer again", every_s=0.5)
    jobs = [wait_job(stack.client, job_id, headers, timeout_s=150) for job_id in accepted]
    done_after_s = time.monotonic() - up_at
    assert [j["state"] for j in jobs] == ["succeeded"] * ACCEPTED, [j.get("error") for j in jobs]
    for job_id in accepted:
        assert_one_perform_effect(stack.db, user["id"], job_id)
    me = stack.client.get("/user/me", headers=headers).json()
    assert me["charCount"] == sum(j["result"]["chars"]["effective"] for j in jobs)
    assert stack.client.get("/recordings", headers=headers).json()["total"] == ACCEPTED
    assert stack.ready().status_code == 200
    retries = stack.workers.log("w1").count("store unavailable; retrying")
    print(f"\ndatabase outage: {ACCEPTED} accepted, down {up_at - down_at:.1f} s, {retries} task retries, "
          f"all done {done_after_s:.1f} s after restart")
