"""Stranded jobs (record written, message lost) are re-sent and complete; give up visibly."""

from __future__ import annotations

from datetime import timedelta

from shared.jobs.service import JobStore, now
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
