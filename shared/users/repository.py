"""The `users` collection: every query and write of the account document, named for what it does.

One document per account carries its credentials, settings, voice state (for the clone and the
voice pool) and character quota. The services that own those rules (shared.users,
shared.voices.clone, shared.pool, shared.quota) decide; this module only reads and writes, so
every way the document changes is in this file. Several guards live in the update filters
(a clone reservation, the warm claim, a job charged exactly once): each function's filter is
its guard, and its boolean answer says whether the guard let the write through.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from shared.clock import now, period_of

#: device tokens kept per account (the most recent logins' clients)
MAX_DEVICES = 10
#: fields of the document the quota reads
QUOTA_FIELDS = {"charCount": 1, "monthlyLimit": 1, "charsUsedRaw": 1, "quota_period": 1, "charged_jobs": 1}
#: the account as services use it: everything but the password hash
WITHOUT_PASSWORD = {"password_hash": 0}


def ensure_indexes(db: Database) -> None:
    db["users"].create_index("username_lower", unique=True, name="username_unique")
    db["users"].create_index("email", unique=True, name="email_unique")


# ------------------------------------------------------------------ accounts


def create_account(db: Database, *, username: str, email: str, password_hash: str, settings: dict[str, Any],
                   monthly_limit: int) -> dict[str, Any]:
    """Insert a new account (no voice, an empty quota in the current period) and return it.
    DuplicateKeyError when the username or email is taken."""
    ts = now()
    doc = {
        "username": username,
        "username_lower": username.lower(),
        "email": email.lower(),
        "password_hash": password_hash,
        "role": "user",
        "settings": settings,
        "voice_state": "none",
        "voice_clone_id": None,
        "voice_clone_previous_id": None,
        "charCount": 0,
        "charsUsedRaw": 0,
        "monthlyLimit": monthly_limit,
        "quota_period": period_of(ts),
        "created_at": ts,
        "updated_at": ts,
    }
    doc["_id"] = db["users"].insert_one(doc).inserted_id
    return doc


def by_id(db: Database, user_oid: ObjectId) -> dict[str, Any] | None:
    """The account without its password hash, or None."""
    return db["users"].find_one({"_id": user_oid}, WITHOUT_PASSWORD)


def credentials_of(db: Database, login: str) -> dict[str, Any] | None:
    """What a login checks (password hash, role, known devices), by email when `login` has an
    @, else by username, case-insensitively."""
    query = {"email": login.lower()} if "@" in login else {"username_lower": login.lower()}
    return db["users"].find_one(query, {"password_hash": 1, "role": 1, "devices": 1})


def record_login(db: Database, user_oid: ObjectId, *, password_hash: str | None = None,
                 device_hash: str | None = None) -> None:
    """After a successful login: store a re-hashed password and/or remember a new device
    (keeping the last MAX_DEVICES). Nothing to write, no round trip."""
    changes: dict[str, Any] = {}
    if password_hash is not None:
        changes["$set"] = {"password_hash": password_hash}
    if device_hash is not None:
        changes["$push"] = {"devices": {"$each": [{"hash": device_hash, "since": now()}], "$slice": -MAX_DEVICES}}
    if changes:
        db["users"].update_one({"_id": user_oid}, changes)


def save_settings(db: Database, user_oid: ObjectId, settings: dict[str, Any]) -> None:
    db["users"].update_one({"_id": user_oid}, {"$set": {"settings": settings, "updated_at": now()}})


def set_role(db: Database, username: str, role: str) -> bool:
    """True when an account of that username exists."""
    return db["users"].update_one({"username_lower": username.lower()}, {"$set": {"role": role}}).matched_count == 1


# ------------------------------------------------------------------ voice clone


def reserve_clone(db: Database, user_oid: ObjectId, reservation: str, stale_after: timedelta) -> bool:
    """Take the account's single clone slot for `reservation`; a reservation older than
    `stale_after` is taken over (its API or job is gone). False when another clone holds it."""
    ts = now()
    return db["users"].update_one(
        {"_id": user_oid, "$or": [{"clone_job": None}, {"clone_job": {"$exists": False}},
                                  {"clone_job.since": {"$lt": ts - stale_after}}]},
        {"$set": {"clone_job": {"id": reservation, "since": ts}}},
    ).modified_count == 1


def release_clone(db: Database, user_oid: ObjectId, reservation: str) -> None:
    """Free the clone slot if `reservation` (the clone job's id) still holds it."""
    db["users"].update_one({"_id": user_oid, "clone_job.id": reservation}, {"$set": {"clone_job": None}})


def voice_state_of(db: Database, user_oid: ObjectId) -> dict[str, Any] | None:
    return db["users"].find_one({"_id": user_oid}, {"voice_state": 1, "voice_clone_id": 1})


def _last_clone(job_id: str, action: str, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"job_id": job_id, "action": action, "error": error, "at": now()}


def record_clone_skipped(db: Database, user_oid: ObjectId, job_id: str) -> None:
    """The clone job found the same clean sample as the current voice's: only the outcome changes."""
    db["users"].update_one({"_id": user_oid}, {"$set": {
        "last_clone": _last_clone(job_id, "update_skipped", None), "updated_at": now()}})


def set_cloned_voice(db: Database, user_oid: ObjectId, job_id: str, *, action: str, sample: dict[str, Any],
                     voice_id: str, voice_record_id: ObjectId, previous_id: str | None,
                     voice_match: dict[str, Any] | None, voice_flag: dict[str, Any] | None) -> None:
    """The clone job made a voice: the account speaks with it from now on, from this sample."""
    db["users"].update_one({"_id": user_oid}, {"$set": {
        "last_clone": _last_clone(job_id, action, None), "updated_at": now(),
        "sample": sample, "voice_state": "ready", "voice_clone_id": voice_id, "voice_record_id": voice_record_id,
        "voice_clone_previous_id": previous_id, "voice_match": voice_match, "voice_flag": voice_flag}})


def record_clone_failure(db: Database, user_oid: ObjectId, job_id: str, error: dict[str, Any], *,
                         voice_failed: bool) -> None:
    """The clone job failed: free its slot (if it still holds it), with `voice_state` failed when
    the account has no voice to keep; the outcome is recorded either way."""
    last_clone = _last_clone(job_id, "failed", error)
    changes: dict[str, Any] = {"clone_job": None, "updated_at": now(), "last_clone": last_clone}
    if voice_failed:
        changes["voice_state"] = "failed"
    db["users"].update_one({"_id": user_oid, "clone_job.id": job_id}, {"$set": changes})
    db["users"].update_one({"_id": user_oid}, {"$set": {"last_clone": last_clone}})


def voice_matches(db: Database) -> Iterator[dict[str, Any]]:
    """`voice_match` of every account that has a voice."""
    return db["users"].find({"voice_clone_id": {"$ne": None}}, {"voice_match": 1})


# ------------------------------------------------------------------ voice pool


def claim_warming(db: Database, user_oid: ObjectId, claimant: str, stale_after: timedelta) -> bool:
    """Claim the right to re-warm the account's voice (one creator at a time per user); the
    claimant's own claim, or one older than `stale_after`, counts as free."""
    ts = now()
    return db["users"].update_one(
        {"_id": user_oid, "$or": [{"warming": None}, {"warming": {"$exists": False}},
                                  {"warming.by": claimant}, {"warming.since": {"$lt": ts - stale_after}}]},
        {"$set": {"warming": {"by": claimant, "since": ts}}}).matched_count == 1


def release_warming(db: Database, user_oid: ObjectId, claimant: str) -> None:
    db["users"].update_one({"_id": user_oid, "warming.by": claimant}, {"$set": {"warming": None}})


def set_voice_ready(db: Database, user_oid: ObjectId, voice_id: str, voice_record_id: ObjectId) -> None:
    """A re-warmed voice (from the stored sample) is the account's voice again."""
    db["users"].update_one({"_id": user_oid}, {"$set": {
        "voice_clone_id": voice_id, "voice_record_id": voice_record_id, "voice_state": "ready",
        "updated_at": now()}})


def mark_voice_evicted(db: Database, voice_id: str) -> None:
    """The voice is gone from the provider (evicted or lost): its account re-warms on next use."""
    db["users"].update_many({"voice_clone_id": voice_id}, {"$set": {
        "voice_state": "evicted", "voice_clone_id": None, "updated_at": now()}})


# ------------------------------------------------------------------ quota


def quota_of(db: Database, user_oid: ObjectId) -> dict[str, Any] | None:
    return db["users"].find_one({"_id": user_oid}, QUOTA_FIELDS)


def ids_outside_period(db: Database, period: str) -> Iterator[dict[str, Any]]:
    """`{_id}` of every account whose quota is still in another period than `period`."""
    return db["users"].find({"quota_period": {"$ne": period}}, {"_id": 1})


def start_period(db: Database, user_oid: ObjectId, period: str) -> bool:
    """Reset the account's characters for `period`, once: False when it is already in it."""
    return db["users"].update_one(
        {"_id": user_oid, "quota_period": {"$ne": period}},
        {"$set": {"quota_period": period, "charCount": 0, "charsUsedRaw": 0, "charged_jobs": [],
                  "refunded_jobs": [], "held": {}, "quota_reset_at": now()}},
    ).modified_count == 1


def hold_characters(db: Database, user_oid: ObjectId, job_id: str, period: str, hold: int) -> bool:
    """Hold `hold` characters for the job in `period`. The filter is the guard: the job is
    neither counted nor given back yet, and the hold fits under `monthlyLimit`."""
    return db["users"].update_one(
        {"_id": user_oid, "quota_period": period, "charged_jobs": {"$ne": job_id},
         "refunded_jobs": {"$ne": job_id},
         "$expr": {"$lte": [{"$add": [{"$ifNull": ["$charCount", 0]}, hold]}, "$monthlyLimit"]}},
        {"$inc": {"charCount": hold}, "$push": {"charged_jobs": job_id}, "$set": {f"held.{job_id}": hold}},
    ).modified_count == 1


def settle_characters(db: Database, user_oid: ObjectId, job_id: str, period: str, *, held: int, effective: int,
                      raw: int, also_set: dict[str, Any] | None = None) -> None:
    """Turn the job's hold into its cost; only the run that finds `held.<job>` settles it.
    `also_set`: other fields of the account written in the same update."""
    update: dict[str, Any] = {"$inc": {"charCount": effective - held, "charsUsedRaw": raw},
                              "$unset": {f"held.{job_id}": ""}}
    if also_set:
        update["$set"] = also_set
    db["users"].update_one({"_id": user_oid, f"held.{job_id}": {"$exists": True}, "quota_period": period}, update)


def release_hold(db: Database, user_oid: ObjectId, job_id: str, period: str, held: int) -> bool:
    """Give back the unsettled hold of a failed job, once."""
    return _give_back(db, {"_id": user_oid, "quota_period": period, f"held.{job_id}": {"$exists": True}},
                      {"charCount": -held}, job_id)


def refund_charge(db: Database, user_oid: ObjectId, job_id: str, period: str, *, effective: int, raw: int) -> bool:
    """Give back the settled charge of a failed job, once."""
    return _give_back(db, {"_id": user_oid, "quota_period": period, "charged_jobs": job_id,
                           f"held.{job_id}": {"$exists": False}},
                      {"charCount": -effective, "charsUsedRaw": -raw}, job_id)


def _give_back(db: Database, guard: dict[str, Any], amounts: dict[str, int], job_id: str) -> bool:
    return db["users"].update_one(
        guard, {"$inc": amounts, "$unset": {f"held.{job_id}": ""}, "$pull": {"charged_jobs": job_id},
                "$push": {"refunded_jobs": job_id}},
    ).modified_count == 1
