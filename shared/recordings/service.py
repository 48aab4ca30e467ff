"""Store, list, read and delete recordings; one recording per perform job, ever.

A note's MP3 travels inside its recording document (one insert) up to `INLINE_MAX_BYTES`;
only a longer one goes to GridFS. The unique index on `job_id` is what makes a second run of
the same job store nothing: its insert fails and it adopts the first run's recording.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gridfs
import pymongo
from bson import Binary, ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

from shared import storage
from shared.clock import now
from shared.errors import NotFound, ValidationFailed
from shared.recordings.schemas import Recording, RecordingPage

PUBLIC_FIELDS = ("title", "date", "routine_type", "topic", "duration_s", "size", "voice_id", "chars_raw",
                 "chars_effective", "model", "provider", "text", "loudness_lufs", "job_id", "created_at",
                 "voice_match")
#: notes up to this size are stored inline (a 3-minute note at 128 kbit/s is about 2.9 MB);
#: MongoDB's document limit is 16 MB
INLINE_MAX_BYTES = 8 * 1024 * 1024
#: reads that never load the audio itself
WITHOUT_AUDIO = {"audio": 0}
STREAM_CHUNK = 256 * 1024


def store(db: Database, *, job_id: str, user_id: str, mp3: bytes, meta: dict[str, Any],
          inline_max_bytes: int = INLINE_MAX_BYTES) -> dict[str, Any]:
    """Save the note for the job; if a previous run already did, return that one instead."""
    doc = {"_id": ObjectId(), "job_id": job_id, "user_id": user_id, "size": len(mp3), "created_at": now(), **meta}
    if len(mp3) <= inline_max_bytes:
        doc["audio"] = Binary(mp3)
    else:
        doc["file_id"] = storage.put(db, storage.RECORDINGS, mp3, f"{job_id}.mp3",
                                     {"user_id": user_id, "job_id": job_id, "content_type": "audio/mpeg"})
    try:
        db["recordings"].insert_one(doc)
    except pymongo.errors.DuplicateKeyError:
        # an earlier (or concurrent) run of the same job stored first: keep theirs
        storage.delete(db, storage.RECORDINGS, doc.get("file_id"))
        return db["recordings"].find_one({"job_id": job_id}, WITHOUT_AUDIO)
    doc.pop("audio", None)
    return doc


@dataclass(frozen=True)
class Audio:
    """A recording's MP3, readable by byte range whether it is inline or in GridFS."""

    size: int
    _inline: bytes | None
    _grid: gridfs.GridOut | None

    def read(self, start: int, end: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes]:
        """Bytes start..end (inclusive), in chunks."""
        if self._inline is not None:
            for offset in range(start, end + 1, chunk):
                yield self._inline[offset:min(end + 1, offset + chunk)]
            return
        try:
            self._grid.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = self._grid.read(min(chunk, remaining))
                if not data:
                    break  # deleted under a download that had already started: end the body short
                remaining -= len(data)
                yield data
        except gridfs.errors.GridFSError:
            return
        finally:
            self._grid.close()

    def close(self) -> None:
        if self._grid is not None:
            self._grid.close()


def open_audio(db: Database, user_id: str, recording_id: str) -> Audio:
    """The owner's recording audio; NotFound when the recording, or its audio, is gone (a
    download racing a delete)."""
    doc = db["recordings"].find_one({"_id": _oid(recording_id), "user_id": user_id}, {"audio": 1, "file_id": 1})
    if doc is None:
        raise NotFound("No such recording.")
    if doc.get("audio") is not None:
        data = bytes(doc["audio"])
        return Audio(len(data), data, None)
    try:
        grid = storage.open_stream(db, storage.RECORDINGS, doc.get("file_id"))
    except gridfs.errors.NoFile as exc:
        raise NotFound("This recording's audio is no longer available.",
                       action="It may have just been deleted; refresh the list of recordings.") from exc
    return Audio(grid.length, None, grid)


def public(doc: dict[str, Any]) -> Recording:
    out = {"id": str(doc["_id"]), **{k: doc.get(k) for k in PUBLIC_FIELDS}}
    out["audio_url"] = f"/recordings/{out['id']}/audio"
    return Recording.model_validate(out)


def _oid(recording_id: str) -> ObjectId:
    try:
        return ObjectId(recording_id)
    except (InvalidId, TypeError) as exc:
        raise NotFound("No such recording.") from exc


def get_owned(db: Database, user_id: str, recording_id: str) -> dict[str, Any]:
    doc = db["recordings"].find_one({"_id": _oid(recording_id), "user_id": user_id}, WITHOUT_AUDIO)
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


def list_page(db: Database, user_id: str, limit: int, cursor: str | None) -> RecordingPage:
    """Newest first, keyset-paginated (stable while new notes arrive)."""
    query: dict[str, Any] = {"user_id": user_id}
    if cursor:
        created, oid = _decode_cursor(cursor)
        query["$or"] = [{"created_at": {"$lt": created}}, {"created_at": created, "_id": {"$lt": oid}}]
    docs = list(db["recordings"].find(query, WITHOUT_AUDIO).sort([("created_at", -1), ("_id", -1)]).limit(limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return RecordingPage(items=[public(d) for d in docs], next_cursor=_encode_cursor(docs[-1]) if more else None,
                         total=db["recordings"].count_documents({"user_id": user_id}))


def delete(db: Database, user_id: str, recording_id: str) -> None:
    """The document first, then its GridFS file (if any): a listed recording always has audio."""
    doc = get_owned(db, user_id, recording_id)
    db["recordings"].delete_one({"_id": doc["_id"]})
    storage.delete(db, storage.RECORDINGS, doc.get("file_id"))


def ensure_indexes(db: Database) -> None:
    db["recordings"].create_index("job_id", unique=True)
    db["recordings"].create_index([("user_id", 1), ("created_at", -1), ("_id", -1)])
