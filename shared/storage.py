"""Audio blobs in GridFS: one bucket for voice samples, one for recordings."""

from __future__ import annotations

from typing import Any

import gridfs
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

SAMPLES = "samples"
RECORDINGS = "recordings"


def put(db: Database, bucket: str, data: bytes, filename: str, metadata: dict[str, Any]) -> ObjectId:
    return gridfs.GridFSBucket(db, bucket_name=bucket).upload_from_stream(filename, data, metadata=metadata)


def get(db: Database, bucket: str, file_id: ObjectId | str) -> bytes:
    return gridfs.GridFSBucket(db, bucket_name=bucket).open_download_stream(as_object_id(file_id)).read()


def open_stream(db: Database, bucket: str, file_id: ObjectId | str) -> gridfs.GridOut:
    return gridfs.GridFSBucket(db, bucket_name=bucket).open_download_stream(as_object_id(file_id))


def delete(db: Database, bucket: str, file_id: ObjectId | str | None) -> None:
    if file_id is None:
        return
    try:
        gridfs.GridFSBucket(db, bucket_name=bucket).delete(as_object_id(file_id))
    except gridfs.errors.NoFile:
        pass


def as_object_id(value: ObjectId | str) -> ObjectId:
    if isinstance(value, ObjectId):
        return value
    try:
        return ObjectId(value)
    except (InvalidId, TypeError) as exc:
        raise gridfs.errors.NoFile(str(value)) from exc
