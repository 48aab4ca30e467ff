"""Deferred deletion of remote voices: due records are claimed once and handed to the queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pymongo.database import Database

from shared.clock import now
from shared.pool import records

#: a claim older than this is considered lost (the message never ran) and may be re-sent
CLAIM_TTL = timedelta(minutes=15)


def enqueue_due_deletions(db: Database, send: Callable[[str], object], limit: int = 200) -> int:
    ts = now()
    sent = 0
    due = db["voices"].find({"state": "evicting", "delete_after": {"$lte": ts}}, {"_id": 1}).limit(limit)
    for doc in due:
        if records.claim_due_deletion(db, doc["_id"], ts, CLAIM_TTL):
            send(str(doc["_id"]))
            sent += 1
    return sent
