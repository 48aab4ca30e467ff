"""Our record of every voice we create at a provider (collection `voices`).

A record exists *before* the remote voice does (state `creating`), and the remote name is
derived from it, so a voice created just before a crash is still recognisable as ours and can
be adopted or deleted by whoever finds it next (a redelivered task, or reconciliation).

States: creating -> ready -> evicting -> deleted, with missing (gone at the provider without us)
and delete_failed (deletion gave up; reconciliation retries it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database

from shared.clock import now

NAME_PREFIX = "nv-"


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


def begin_creation(db: Database, *, provider: str, user_id: str, sha256: str, job_id: str,
                   capacity: int) -> tuple[dict[str, Any] | None, bool]:
    """The `creating` record for this job holding one of `capacity` slots, and whether it is
    new. When the job runs again, its existing record (an earlier run may already have created
    the remote voice). (None, True) when every slot is taken.

    Slots are numbered 0..capacity-1 with a unique index, so two creators can never hold the
    same slot: the number of our voices at the provider cannot exceed the capacity, whatever
    the concurrency, and a crash cannot leak a slot (the record is the reservation). When the
    capacity shrinks, the voices in slots at or above it still count (`candidate_slots`): no
    new voice is created while they fill the pool; voices are evicted first."""
    existing = collection(db).find_one({"job_id": job_id})
    if existing is not None and existing["state"] not in ("deleted", "missing"):
        return existing, False
    if existing is not None:
        # Closed under a crashed run (reconciliation freed it): free the key, start afresh.
        collection(db).update_one({"_id": existing["_id"]}, {"$set": {"job_id": f"{job_id}#closed-{existing['_id']}"}})
    taken = {d["slot"] for d in collection(db).find({"provider": provider, "slot": {"$exists": True}},
                                                     {"slot": 1})}
    for slot in candidate_slots(taken, capacity):
        record_id = ObjectId()
        doc = {
            "_id": record_id,
            "provider": provider,
            "voice_id": None,
            "name": remote_name(record_id, user_id, sha256),
            "user_id": user_id,
            "sample_sha256": sha256,
            "state": "creating",
            "slot": slot,
            "job_id": job_id,
            "attempts": 0,
            "created_at": now(),
            "last_used_at": now(),
        }
        try:
            collection(db).insert_one(doc)
        except pymongo.errors.DuplicateKeyError as exc:
            if "job_id" in ((exc.details or {}).get("keyPattern") or {}):
                return collection(db).find_one({"job_id": job_id}), False  # a concurrent run won
            continue  # someone took this slot first: try the next one
        return doc, True
    return None, True


def candidate_slots(taken: set[int], capacity: int) -> list[int]:
    """The free slots a new voice may take: those under k, where k is the largest number such
    that k slots plus the voices held in slots at or above k fit in the capacity.

    With every voice under the capacity (the usual case) k is the capacity. When the capacity
    has shrunk (the provider's limit fell, foreign voices appeared), voices left in slots at or
    above it are still at the provider and count: a free low slot beside them is no room, and
    since every creator draws from the same k slots, two creating at once cannot both fit in
    where only one voice may (the unique slot index lets one of them have it)."""
    k = capacity
    while k > 0 and k + sum(1 for s in taken if s >= k) > capacity:
        k -= 1
    return [slot for slot in range(k) if slot not in taken]


def mark_ready(db: Database, record_id: ObjectId, voice_id: str) -> dict[str, Any]:
    return collection(db).find_one_and_update(
        {"_id": record_id},
        {"$set": {"voice_id": voice_id, "state": "ready", "ready_at": now(), "last_used_at": now()},
         "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )


def mark_deleted(db: Database, record_id: ObjectId, reason: str) -> None:
    """The voice is gone from the provider: its slot is free again."""
    collection(db).update_one({"_id": record_id},
                              {"$set": {"state": "deleted", "deleted_at": now(), "deleted_reason": reason},
                               "$unset": {"slot": ""}})


def mark_missing(db: Database, voice_id: str) -> None:
    """The provider no longer has the voice (deleted outside our control): free its slot."""
    collection(db).update_many({"voice_id": voice_id, "state": {"$in": ["ready", "creating"]}},
                               {"$set": {"state": "missing", "missing_at": now()}, "$unset": {"slot": ""}})


def mark_delete_failed(db: Database, record_id: ObjectId | str, error: dict[str, Any]) -> None:
    """The provider still holds the voice: it keeps its slot, visible to reconciliation, which
    retries the delete."""
    collection(db).update_one({"_id": ObjectId(record_id)}, {"$set": {"state": "delete_failed",
                                                                      "delete_error": error}})


def touch_last_used(db: Database, record_id: ObjectId, ts) -> None:
    collection(db).update_one({"_id": record_id}, {"$set": {"last_used_at": ts}})


def mark_evicting(db: Database, voice_id: str, reason: str) -> dict[str, Any] | None:
    """Take a ready voice out of use for eviction; None if it is not (or no longer) ready."""
    return collection(db).find_one_and_update(
        {"voice_id": voice_id, "state": "ready"},
        {"$set": {"state": "evicting", "evict_reason": reason, "delete_after": now()}})


def claim_due_deletion(db: Database, record_id: ObjectId, ts, stale_after: timedelta) -> bool:
    """One sweeper (of two beats, say) sends a due deletion: True for the one that claimed it."""
    return collection(db).update_one(
        {"_id": record_id, "state": "evicting",
         "$or": [{"delete_claimed_at": None}, {"delete_claimed_at": {"$lt": ts - stale_after}}]},
        {"$set": {"delete_claimed_at": ts}}).modified_count == 1


def claim_creation(db: Database, record_id: ObjectId, token: str, hold: timedelta) -> bool:
    """Hold a `creating` record while talking to the provider; True if this run holds it."""
    ts = now()
    return collection(db).update_one(
        {"_id": record_id, "state": "creating",
         "$or": [{"create_claim": None}, {"create_claim": {"$exists": False}}, {"create_claim.until": {"$lt": ts}}]},
        {"$set": {"create_claim": {"by": token, "until": ts + hold}}},
    ).modified_count == 1


def renew_creation_claim(db: Database, record_id: ObjectId, token: str, hold: timedelta) -> None:
    collection(db).update_one({"_id": record_id, "create_claim.by": token},
                              {"$set": {"create_claim.until": now() + hold}})


def release_creation_claim(db: Database, record_id: ObjectId, token: str) -> None:
    collection(db).update_one({"_id": record_id, "create_claim.by": token}, {"$unset": {"create_claim": ""}})


def slots_used(db: Database, provider: str) -> int:
    return collection(db).count_documents({"provider": provider, "slot": {"$exists": True}})


def schedule_deletion(db: Database, record_id: ObjectId, delay: timedelta, reason: str) -> None:
    """Mark a ready voice for deletion after `delay` (in-flight syntheses may still use it).

    Stored as a due time and swept by beat; never a long Celery countdown (on Redis, a
    countdown beyond the visibility timeout is delivered twice)."""
    collection(db).update_one(
        {"_id": record_id, "state": {"$in": ["ready", "creating"]}},
        {"$set": {"state": "evicting", "delete_after": now() + delay, "evict_reason": reason}},
    )


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
    voices.create_index("name")
    # slots are per provider account: one deployment talks to one account per provider
    voices.create_index([("provider", 1), ("slot", 1)], unique=True,
                        partialFilterExpression={"slot": {"$exists": True}}, name="provider_slot_unique")
