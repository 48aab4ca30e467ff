"""Our record of every voice we create at a provider (collection `voices`).

A record exists *before* the remote voice does (state `creating`), and the remote name is
derived from it, so a voice created just before a crash is still recognisable as ours and can
be adopted or deleted by whoever finds it next (a redelivered task, or reconciliation).

States: creating -> ready -> evicting -> deleted, with missing (gone at the provider without us)
and delete_failed (deletion gave up; reconciliation retries it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database

from shared.jobs.service import now

NAME_PREFIX = "nv-"
#: states in which a voice occupies a slot at the provider
HOLDS_SLOT = ("creating", "ready", "evicting", "delete_failed")


def remote_name(record_id: ObjectId, user_id: str, sha256: str) -> str:
    """`nv-<user>-<sha12>-<rec6>`: ours by prefix, its owner and sample readable, unique per record."""
    return f"{NAME_PREFIX}{user_id}-{sha256[:12]}-{str(record_id)[-6:]}"


def record_id_suffix(name: str) -> str | None:
    """The record suffix of one of our names, or None when the name is not ours."""
    if not name.startswith(NAME_PREFIX):
        return None
    parts = name[len(NAME_PREFIX):].split("-")
    return parts[-1] if len(parts) == 3 and len(parts[-1]) == 6 else None


def collection(db: Database):
    return db["voices"]


def begin_creation(db: Database, *, provider: str, user_id: str, sha256: str,
                   job_id: str) -> tuple[dict[str, Any], bool]:
    """The `creating` record for this job, and whether it is new; when the job runs again,
    the existing record (an earlier run may already have created the remote voice)."""
    existing = collection(db).find_one({"job_id": job_id})
    if existing is not None:
        return existing, False
    record_id = ObjectId()
    doc = {
        "_id": record_id,
        "provider": provider,
        "voice_id": None,
        "name": remote_name(record_id, user_id, sha256),
        "user_id": user_id,
        "sample_sha256": sha256,
        "state": "creating",
        "job_id": job_id,
        "attempts": 0,
        "created_at": now(),
        "last_used_at": now(),
    }
    try:
        collection(db).insert_one(doc)
    except pymongo.errors.DuplicateKeyError:  # a concurrent run of the same job won the insert
        return collection(db).find_one({"job_id": job_id}), False
    return doc, True


def mark_ready(db: Database, record_id: ObjectId, voice_id: str) -> dict[str, Any]:
    return collection(db).find_one_and_update(
        {"_id": record_id},
        {"$set": {"voice_id": voice_id, "state": "ready", "ready_at": now(), "last_used_at": now()},
         "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )


def mark_deleted(db: Database, record_id: ObjectId, reason: str) -> None:
    collection(db).update_one({"_id": record_id},
                              {"$set": {"state": "deleted", "deleted_at": now(), "deleted_reason": reason}})


def schedule_deletion(db: Database, record_id: ObjectId, delay: timedelta, reason: str) -> None:
    """Mark a ready voice for deletion after `delay` (in-flight syntheses may still use it).

    Stored as a due time and swept by beat; never a long Celery countdown (on Redis, a
    countdown beyond the visibility timeout is delivered twice)."""
    collection(db).update_one(
        {"_id": record_id, "state": {"$in": ["ready", "creating"]}},
        {"$set": {"state": "evicting", "delete_after": now() + delay, "evict_reason": reason}},
    )


def due_deletions(db: Database, at: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return list(collection(db).find({"state": "evicting", "delete_after": {"$lte": at or now()}}).limit(limit))


def get(db: Database, record_id: ObjectId | str) -> dict[str, Any] | None:
    return collection(db).find_one({"_id": ObjectId(record_id)})


def by_voice_id(db: Database, voice_id: str) -> dict[str, Any] | None:
    return collection(db).find_one({"voice_id": voice_id}, sort=[("created_at", -1)])


def ensure_indexes(db: Database) -> None:
    voices = collection(db)
    voices.create_index("job_id", unique=True, partialFilterExpression={"job_id": {"$type": "string"}})
    voices.create_index([("state", 1), ("delete_after", 1)])
    voices.create_index([("user_id", 1), ("created_at", -1)])
    voices.create_index("voice_id")
