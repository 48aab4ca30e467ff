"""Store, list, read and delete recordings; one recording per perform job, ever."""

from __future__ import annotations

import base64
import json
from typing import Any

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

from shared import storage
from shared.errors import NotFound, ValidationFailed
from shared.jobs.service import now

PUBLIC_FIELDS = ("title", "date", "routine_type", "topic", "duration_s", "size", "voice_id", "chars_raw",
                 "chars_effective", "model", "provider", "text", "loudness_lufs", "job_id", "created_at")


def store(db: Database, *, job_id: str, user_id: str, mp3: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """Save the note for the job; if a previous run already did, return that one instead."""
    existing = db["recordings"].find_one({"job_id": job_id})
    if existing is not None:
        return existing
    file_id = storage.put(db, storage.RECORDINGS, mp3, f"{job_id}.mp3",
                          {"user_id": user_id, "job_id": job_id, "content_type": "audio/mpeg"})
    doc = {"_id": ObjectId(), "job_id": job_id, "user_id": user_id, "file_id": file_id, "size": len(mp3),
           "created_at": now(), **meta}
    try:
        db["recordings"].insert_one(doc)
    except pymongo.errors.DuplicateKeyError:
        # a concurrent run of the same job stored first: keep theirs, drop our file
        storage.delete(db, storage.RECORDINGS, file_id)
        return db["recordings"].find_one({"job_id": job_id})
    return doc


def public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {"id": str(doc["_id"]), **{k: doc.get(k) for k in PUBLIC_FIELDS}}
    out["audio_url"] = f"/recordings/{out['id']}/audio"
    return out


def _oid(recording_id: str) -> ObjectId:
    try:
        return ObjectId(recording_id)
    except (InvalidId, TypeError) as exc:
        raise NotFound("No such recording.") from exc


def get_owned(db: Database, user_id: str, recording_id: str) -> dict[str, Any]:
    doc = db["recordings"].find_one({"_id": _oid(recording_id), "user_id": user_id})
    if doc is None:
        raise NotFound("No such recording.")
    return doc


def _encode_cursor(doc: dict[str, Any]) -> str:
    raw = json.dumps([doc["created_at"].isoformat(), str(doc["_id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[Any, ObjectId]:
    from datetime import datetime

    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, oid = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), ObjectId(oid)
    except Exception as exc:  # noqa: BLE001 - any malformed cursor is the client's mistake
        raise ValidationFailed("The cursor is not valid; use the next_cursor of a previous page.") from exc


def list_page(db: Database, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Newest first, keyset-paginated (stable while new notes arrive)."""
    query: dict[str, Any] = {"user_id": user_id}
    if cursor:
        created, oid = _decode_cursor(cursor)
        query["$or"] = [{"created_at": {"$lt": created}}, {"created_at": created, "_id": {"$lt": oid}}]
    docs = list(db["recordings"].find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return {"items": [public(d) for d in docs], "next_cursor": _encode_cursor(docs[-1]) if more else None,
            "total": db["recordings"].count_documents({"user_id": user_id})}


def delete(db: Database, user_id: str, recording_id: str) -> None:
    doc = get_owned(db, user_id, recording_id)
    db["recordings"].delete_one({"_id": doc["_id"]})
    storage.delete(db, storage.RECORDINGS, doc["file_id"])


def ensure_indexes(db: Database) -> None:
    db["recordings"].create_index("job_id", unique=True)
    db["recordings"].create_index([("user_id", 1), ("created_at", -1), ("_id", -1)])
