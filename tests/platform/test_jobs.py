"""Jobs through a real worker: 202 shape, polling, SSE push of every transition, ownership."""

from __future__ import annotations

import json

from tests.conftest import api_client, read_sse, wait_job


def _start_diagnostic(client, headers) -> dict:
    resp = client.post("/admin/diagnostics", headers=headers)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status_url"] == f"/jobs/{body['job_id']}"
    assert body["events_url"] == f"/jobs/{body['job_id']}/events"
    assert resp.headers["location"] == body["status_url"]
    return body


def test_poll_until_done(on_broker):
    client = on_broker.client
    _, headers = on_broker.users(role="admin")
    job_id = _start_diagnostic(client, headers)["job_id"]
    job = wait_job(client, job_id, headers)
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"]["mongo_ping_ms"] >= 0
    assert job["result"]["tools"]["ffmpeg"] is True
    assert job["started_at"] and job["finished_at"]


def test_sse_streams_every_transition_of_a_real_task(on_broker):
    client = on_broker.client
    _, headers = on_broker.users(role="admin")
    # Subscribe before the worker can pick the job up: stop nothing, just open the stream
    # right away; whatever was missed is covered by the "current state first" rule.
    accepted = _start_diagnostic(client, headers)
    events = read_sse(client, accepted["events_url"], headers)
    assert events, "no events"
    assert events[-1]["state"] == "succeeded"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    # every event has the same shape as the poll
    poll = client.get(accepted["status_url"], headers=headers).json()
    assert set(events[-1]) == set(poll)
    assert events[-1] == poll
    # a stream opened after the end gets the final state at once, then closes
    again = read_sse(client, accepted["events_url"], headers)
    assert again == [poll]


def test_sse_receives_intermediate_stages(client, new_user, workers, db, rds, settings):
    """Open the stream while the job is still queued (no worker touches it until we send it)."""
    import threading

    from shared.jobs.service import JobStore

    user, headers = new_user(role="admin")
    store = JobStore(db, rds, settings.job_status_ttl_s, broker_url=settings.redis_url)
    view, _ = store.create(kind="diagnostic", user_id=user["id"])
    received: list[dict] = []
    reader = threading.Thread(target=read_sse, args=(client, f"/jobs/{view.job_id}/events", headers),
                              kwargs={"sink": received})
    reader.start()
    import time

    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received and received[0]["state"] == "queued"
    store.enqueue(view.job_id, "diagnostic")
    reader.join(timeout=60)
    stages = [e["stage"] for e in received]
    assert stages[0] == "queued"
    assert "checking_mongo" in stages and "checking_redis" in stages
    assert received[-1]["state"] == "succeeded"


def test_other_users_job_is_404(client, new_user, workers):
    _, owner = new_user(role="admin")
    _, stranger = new_user()
    accepted = _start_diagnostic(client, owner)
    for url in (accepted["status_url"], accepted["events_url"]):
        resp = client.get(url, headers=stranger)
        assert resp.status_code == 404
        assert resp.json()["error"] == "NOT_FOUND"
    assert client.get("/jobs/does-not-exist", headers=owner).status_code == 404


def test_poll_falls_back_to_mongo_when_mirror_expired(client, new_user, workers, rds):
    _, headers = new_user(role="admin")
    job_id = _start_diagnostic(client, headers)["job_id"]
    done = wait_job(client, job_id, headers)
    rds.delete(f"nv:job:{job_id}")
    assert client.get(f"/jobs/{job_id}", headers=headers).json() == done


def test_admin_endpoints_need_admin_role(client, new_user):
    _, headers = new_user()
    resp = client.post("/admin/diagnostics", headers=headers)
    assert resp.status_code == 403
    assert resp.json()["error"] == "FORBIDDEN"


def test_request_id_travels_into_the_task_and_job(client, new_user, workers, db):
    _, headers = new_user(role="admin")
    rid = "test-request-0123456789"
    resp = client.post("/admin/diagnostics", headers={**headers, "X-Request-ID": rid})
    assert resp.headers["x-request-id"] == rid
    job_id = resp.json()["job_id"]
    wait_job(client, job_id, headers)
    assert db["jobs"].find_one({"_id": job_id})["request_id"] == rid
    # the worker logged with the same request id
    import json

    lines = [json.loads(line) for line in workers.log("all").splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == rid and line.get("job_id") == job_id for line in lines)


def _queued_job(db, rds, settings, user_id: str) -> str:
    """A job that stays queued: its message goes to a broker no worker reads."""
    from shared.jobs.service import JobStore

    view, _ = JobStore(db, rds, settings.job_status_ttl_s, broker_url="redis://127.0.0.1:1/0").create(
        kind="diagnostic", user_id=user_id)
    return view.job_id


def test_one_user_cannot_take_live_updates_from_everyone(api_url, new_user, db, rds, settings):
    """Streams are capped per user (429 with Retry-After), every stream of a process shares one
    Redis subscription per job, and a quiet stream gets a heartbeat comment."""
    import contextlib

    hog, hog_headers = new_user(role="admin")
    other, other_headers = new_user(role="admin")
    hog_job = _queued_job(db, rds, settings, hog["id"])
    cap = settings.sse_streams_per_user
    with contextlib.ExitStack() as streams, api_client(api_url, timeout=30) as c:
        opened = []
        for _ in range(cap):
            resp = streams.enter_context(c.stream("GET", f"/jobs/{hog_job}/events", headers=hog_headers))
            assert resp.status_code == 200
            opened.append(resp.iter_lines())
        refused = c.get(f"/jobs/{hog_job}/events", headers=hog_headers)
        assert refused.status_code == 429 and refused.json()["error"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) > 0 and refused.json()["action"]
        # everyone else still follows their jobs live
        other_job = _quick_job(c, other_headers)
        events = read_sse(c, f"/jobs/{other_job}/events", other_headers)
        assert events[-1]["state"] == "succeeded"
        # ten followers of one job on one API process: one Redis subscriber for its channel
        assert rds.pubsub_numsub(f"nv:job-events:{hog_job}") == [(f"nv:job-events:{hog_job}", 1)]
        # a quiet stream: the current state with its id, then a heartbeat within 15 s
        lines = opened[0]
        first = [next(lines) for _ in range(6)]
        assert any(line.startswith("id: 1") for line in first), first
        assert any(line.startswith(": heartbeat") for line in lines), "no heartbeat"
    # streams that closed give their place back, as soon as the server has seen them go (it
    # notices a closed connection asynchronously: allow it a few seconds on a busy machine)
    import time

    deadline = time.monotonic() + 10
    with api_client(api_url, timeout=30) as c:
        while True:
            with c.stream("GET", f"/jobs/{hog_job}/events", headers=hog_headers) as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        assert again.status_code == 200


def _quick_job(c, headers) -> str:
    resp = c.post("/admin/diagnostics", headers=headers)
    assert resp.status_code == 202, resp.text
    return resp.json()["job_id"]


def test_a_resumed_stream_sends_only_what_the_client_has_not_seen(client, new_user, workers):
    _, headers = new_user(role="admin")
    job_id = _quick_job(client, headers)
    final = wait_job(client, job_id, headers)
    assert read_sse(client, f"/jobs/{job_id}/events", {**headers, "Last-Event-ID": str(final["seq"])}) == []
    missed = read_sse(client, f"/jobs/{job_id}/events", {**headers, "Last-Event-ID": str(final["seq"] - 1)})
    assert missed == [final]


def test_a_countdown_on_rabbitmq_waits_at_the_broker_not_in_the_worker(rabbit_workers, rabbit_env, rds):
    """A task retried with a countdown (what a job does while a store is down) goes, on
    RabbitMQ, through Celery's native delayed delivery: the broker holds it for the delay and
    the worker goes on consuming meanwhile (quorum queues have no global QoS, so a worker
    holding it would block a prefetch slot until then)."""
    import time
    import uuid

    from shared.jobs.broker import canary_queue
    from shared.jobs.canary import CANARY_TASK, reply_key
    from shared.jobs.celery_app import producer_for

    url = rabbit_env["BROKER_URL"]
    app, nonce = producer_for(url), uuid.uuid4().hex
    sent, sent_at = time.monotonic(), time.time()
    later = app.send_task(CANARY_TASK, args=[nonce, "later"], queue=canary_queue("perform", url), countdown=3,
                          ignore_result=True)
    app.send_task(CANARY_TASK, args=[nonce, "now"], queue=canary_queue("perform", url), ignore_result=True)
    answers = []
    while len(answers) < 2 and time.monotonic() - sent < 20:
        item = rds.blpop([reply_key(nonce)], timeout=1)
        if item is not None:
            answers.append((json.loads(item[1])["queue"], time.monotonic() - sent))
    assert [queue for queue, _ in answers] == ["now", "later"], answers
    assert answers[0][1] < 2 and 3 <= answers[1][1] < 10, answers
    # the worker received it only when the delay was over: the broker held it, not the worker
    from datetime import datetime

    received = [json.loads(line)["ts"] for line in rabbit_workers.log("rabbit").splitlines()
                if later.id in line and "received" in line]
    assert received, "the worker never logged the delayed task"
    assert datetime.fromisoformat(received[0]).timestamp() - sent_at >= 2.5
