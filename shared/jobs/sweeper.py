"""Re-send jobs whose message was lost, and finish the undo of failed jobs, so nothing accepted
is lost and nothing held stays held.

A job can be stranded when the API died between writing the record and sending the message,
when a broker lost its data, or when a worker died holding a message that was then dropped.
Tasks are idempotent by job id, so sending again is safe; it is still done sparingly:
- queued for a minute with no "sent" mark: the message never reached the broker, or the
  Redis that held it (and the mark beside it) lost its data;
- queued with the mark for a day: a safety net for a broker that lost messages on its own (a
  job merely waiting in a long backlog has the mark, and is left alone until then);
- running with no progress for longer than the visibility timeout plus the longest time limit
  (no live run can be that quiet: the hard time limit would have ended it).
A job re-sent `MAX_REQUEUES` times is failed with a clear error; failing it runs its kind's
failure hook (characters given back, the clone slot freed). A re-send the broker refuses is
not counted: the job waits for the broker rather than fail.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from shared.clock import now
from shared.config import Settings
from shared.errors import JobLost, ServiceUnavailable
from shared.jobs.service import JobStore

log = logging.getLogger(__name__)
MAX_REQUEUES = 3
NEVER_SENT_AFTER = timedelta(minutes=1)
SENT_BUT_UNTOUCHED_AFTER = timedelta(days=1)
UNDO_RETRY_AFTER = timedelta(minutes=1)




def stranded_jobs(store: JobStore, settings: Settings, limit: int) -> list[dict[str, Any]]:
    ts = now()
    quiet = timedelta(seconds=settings.visibility_timeout_s + settings.longest_time_limit_s)
    fields = {"_id": 1, "kind": 1, "user_id": 1, "requeues": 1, "state": 1, "created_at": 1}
    queued = list(store.jobs.find({"state": "queued", "created_at": {"$lt": ts - NEVER_SENT_AFTER}}, fields)
                  .sort("created_at", 1).limit(limit))
    sent = store.was_sent([j["_id"] for j in queued]) if queued else {}
    stranded = [j for j in queued
                if not sent[j["_id"]] or j["created_at"] < ts - SENT_BUT_UNTOUCHED_AFTER]
    stranded += list(store.jobs.find({"state": "running", "updated_at": {"$lt": ts - quiet}}, fields).limit(limit))
    return stranded


def requeue_stranded(store: JobStore, settings: Settings, limit: int = 200) -> dict[str, int]:
    report = {"requeued": 0, "failed": 0, "undone": 0}
    ts = now()
    # those to give up on first: failing them needs no broker, re-sending the rest does
    for job in sorted(stranded_jobs(store, settings, limit), key=lambda j: -(j.get("requeues") or 0)):
        # claim: one sweeper (of two beats, say) acts on a job per round
        seen = job.get("requeues")
        claim = {"_id": job["_id"], "state": job["state"],
                 "requeues": seen if seen is not None else {"$exists": False}}
        if not store.jobs.update_one(claim, {"$inc": {"requeues": 1}, "$set": {"requeued_at": ts}}).modified_count:
            continue
        if (seen or 0) >= MAX_REQUEUES:
            store.fail(job["_id"], JobLost("The job could not be processed after several attempts."))
            report["failed"] += 1
            continue
        log.warning("re-sending stranded job", extra={"job_id": job["_id"], "kind": job["kind"]})
        try:
            store.enqueue(job["_id"], job["kind"], fail_if_unsent=False)
        except ServiceUnavailable:
            # the broker is down: this attempt does not count, and the rest wait for it too
            store.jobs.update_one({"_id": job["_id"]}, {"$inc": {"requeues": -1}})
            break
        report["requeued"] += 1
    for job in store.jobs.find({"state": "failed", "undo_pending": True,
                                "finished_at": {"$lt": ts - UNDO_RETRY_AFTER}}).limit(limit):
        report["undone"] += int(store.undo(job))
    return report
