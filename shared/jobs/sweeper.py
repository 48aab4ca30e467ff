"""Re-send jobs whose message was lost, so nothing accepted is lost.

A job can be stranded when the API died between writing the record and sending the message,
when a broker lost its data, or when a worker died holding a message that was then dropped.
Tasks are idempotent by job id, so sending again is safe; it is still done sparingly:
- queued and never sent, for a minute;
- queued, sent, and still untouched after twice the visibility timeout;
- running with no progress for longer than the visibility timeout plus the longest time limit
  (no live run can be that quiet: the hard time limit would have ended it).
A job re-sent `MAX_REQUEUES` times is failed with a clear error (and its charge refunded).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.config import Settings
from shared.errors import AppError
from shared.jobs.service import JobStore, now

log = logging.getLogger(__name__)
MAX_REQUEUES = 3


class JobLost(AppError):
    code = "JOB_LOST"
    status = 500
    default_action = "Try again; we could not process this request."


def requeue_stranded(store: JobStore, settings: Settings, limit: int = 200) -> dict[str, int]:
    ts = now()
    vis = timedelta(seconds=settings.visibility_timeout_s)
    stranded = store.jobs.find({"$or": [
        {"state": "queued", "enqueued_at": {"$exists": False}, "created_at": {"$lt": ts - timedelta(minutes=1)}},
        {"state": "queued", "enqueued_at": {"$lt": ts - 2 * vis}},
        {"state": "running", "updated_at": {"$lt": ts - vis - timedelta(seconds=settings.longest_time_limit_s)}},
    ]}, {"_id": 1, "kind": 1, "user_id": 1, "requeues": 1}).limit(limit)
    report = {"requeued": 0, "failed": 0}
    for job in stranded:
        # claim: one sweeper (of two beats, say) acts on a job per round
        seen = job.get("requeues")
        claimed = store.jobs.update_one({"_id": job["_id"],
                                         "requeues": seen if seen is not None else {"$exists": False}},
                                        {"$inc": {"requeues": 1}, "$set": {"requeued_at": ts}})
        if not claimed.modified_count:
            continue
        if job.get("requeues", 0) >= MAX_REQUEUES:
            store.fail(job["_id"], JobLost("The job could not be processed after several attempts."))
            if job["kind"] == "perform":
                from bson import ObjectId

                from shared.quota.service import refund

                refund(store.jobs.database, ObjectId(job["user_id"]), job["_id"])
            report["failed"] += 1
            continue
        log.warning("re-sending stranded job", extra={"job_id": job["_id"], "kind": job["kind"]})
        store.enqueue(job["_id"], job["kind"])
        report["requeued"] += 1
    return report
