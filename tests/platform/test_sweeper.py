"""Stranded jobs (record written, message lost) are re-sent and complete; give up visibly."""

from __future__ import annotations

from datetime import timedelta

from shared.clock import now
from shared.jobs.service import JobStore
from shared.jobs.sweeper import MAX_REQUEUES, requeue_stranded
from tests.conftest import wait_job


def test_job_whose_message_never_left_is_resent_and_completes(client, new_user, workers, db, rds, settings):
    user, headers = new_user(role="admin")
    store = JobStore(db, rds, broker_url=settings.redis_url)
    view, _ = store.create(kind="diagnostic", user_id=user["id"])  # written, never enqueued (API crash)
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"created_at": now() - timedelta(minutes=5)}})
    report = requeue_stranded(store, settings)
    assert report["requeued"] >= 1
    assert wait_job(client, view.job_id, headers)["state"] == "succeeded"
    # a second sweep finds nothing left to do for it
    assert db["jobs"].find_one({"_id": view.job_id})["requeues"] == 1
    requeue_stranded(store, settings)
    assert db["jobs"].find_one({"_id": view.job_id})["requeues"] == 1


def test_job_lost_too_often_fails_clearly(client, new_user, db, rds, settings):
    user, headers = new_user(role="admin")
    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")  # its messages go nowhere
    view, _ = store.create(kind="diagnostic", user_id=user["id"])
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"created_at": now() - timedelta(minutes=5),
                                                          "requeues": MAX_REQUEUES}})
    requeue_stranded(store, settings)
    job = client.get(f"/jobs/{view.job_id}", headers=headers).json()
    assert job["state"] == "failed" and job["error"]["error"] == "JOB_LOST" and job["error"]["action"]


def test_a_job_waiting_in_a_long_backlog_is_left_alone(new_user, db, rds, settings):
    """Its message was handed to the broker (the sent mark): however long it waits, it is
    neither sent twice nor failed."""
    user, _ = new_user(role="admin")
    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")  # a re-send would fail loudly
    view, _ = store.create(kind="diagnostic", user_id=user["id"])
    rds.hset(f"nv:job:{view.job_id}", "sent", "1")
    long_ago = now() - timedelta(hours=2)
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"created_at": long_ago, "enqueued_at": long_ago,
                                                          "requeues": MAX_REQUEUES}})
    requeue_stranded(store, settings)
    job = db["jobs"].find_one({"_id": view.job_id})
    assert job["state"] == "queued" and job["requeues"] == MAX_REQUEUES


def test_a_resend_the_broker_refuses_neither_fails_nor_counts(new_user, db, rds, settings):
    user, _ = new_user(role="admin")
    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")  # the broker is down
    view, _ = store.create(kind="diagnostic", user_id=user["id"])
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"created_at": now() - timedelta(minutes=5)}})
    requeue_stranded(store, settings)
    job = db["jobs"].find_one({"_id": view.job_id})
    assert job["state"] == "queued" and job.get("requeues", 0) == 0


def _perform_job_holding_characters(db, rds, settings, user_id: str):
    from bson import ObjectId

    from shared.quota.service import reserve

    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")
    view, _ = store.create(kind="perform", user_id=user_id,
                           payload={"routine_type": "gratitude", "topic": "my sister's wedding"})
    user = db["users"].find_one({"_id": ObjectId(user_id)})
    reserve(db, user, view.job_id, longest=700, shortest=200, model="local-espeak", provider="local")
    assert db["users"].find_one({"_id": ObjectId(user_id)})["charCount"] == 700
    return store, view


def test_a_lost_perform_failed_by_the_sweeper_gives_its_characters_back(client, new_user, db, rds, settings):
    from bson import ObjectId

    user, headers = new_user()
    store, view = _perform_job_holding_characters(db, rds, settings, user["id"])
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"created_at": now() - timedelta(minutes=5),
                                                          "requeues": MAX_REQUEUES}})
    requeue_stranded(store, settings)
    job = client.get(f"/jobs/{view.job_id}", headers=headers).json()
    assert job["state"] == "failed" and job["error"]["error"] == "JOB_LOST"
    assert db["users"].find_one({"_id": ObjectId(user["id"])})["charCount"] == 0
    assert db["charges"].find_one({"_id": view.job_id})["state"] == "released"


def test_an_undo_cut_short_is_finished_by_the_sweeper(new_user, db, rds, settings):
    """The job was marked failed but its process died before the failure hook ran."""
    from bson import ObjectId

    user, _ = new_user()
    store, view = _perform_job_holding_characters(db, rds, settings, user["id"])
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {
        "state": "failed", "undo_pending": True, "finished_at": now() - timedelta(minutes=5),
        "error": {"error": "INTERNAL_ERROR", "message": "x", "action": "y"}}})
    assert requeue_stranded(store, settings)["undone"] >= 1
    assert db["users"].find_one({"_id": ObjectId(user["id"])})["charCount"] == 0
    assert "undo_pending" not in db["jobs"].find_one({"_id": view.job_id})


def test_a_job_whose_message_left_is_never_answered_503(client, new_user, workers, db, rds, settings):
    """The send succeeded and the write after it failed: the client must get its job (which
    runs), not a 503 that would make it submit again and pay twice."""
    import redis as redis_lib

    user, headers = new_user(role="admin")

    class MarkFails(type(rds)):
        def hset(self, *args, **kwargs):
            raise redis_lib.ConnectionError("the store dropped just after the send")

    store = JobStore(db, MarkFails.from_url(settings.redis_url, decode_responses=True),
                     broker_url=settings.redis_url)
    view, created = store.submit(kind="diagnostic", user_id=user["id"])  # raises nothing
    assert created
    assert wait_job(client, view.job_id, headers)["state"] == "succeeded"
    # without the mark the sweeper may send it again later; the job has finished, so it will not
    requeue_stranded(JobStore(db, rds, broker_url=settings.redis_url), settings)
    assert db["jobs"].find_one({"_id": view.job_id}).get("requeues", 0) == 0
