"""Make sure a user's voice exists at the provider before speaking with it.

A user keeps a stable identity (their stored normalized sample); the remote voice may have
been evicted or lost. Then it is re-created from the sample, transparently."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from shared import storage
from shared.errors import VoiceCloneRequired
from shared.jobs.service import now
from shared.providers.voice.base import VoiceProvider
from shared.voices import records
from shared.voices.remote import ensure_remote_voice


def acquire_voice(db: Database, provider: VoiceProvider, user: dict[str, Any], job_id: str) -> tuple[str, bool]:
    """The voice id to speak with, and whether it had to be re-created (re-warmed)."""
    voice_id = user.get("voice_clone_id")
    if voice_id and user.get("voice_state") == "ready":
        return voice_id, False
    sample = user.get("sample") or {}
    if not sample.get("normalized_id"):
        raise VoiceCloneRequired("There is no voice or stored sample for this account.")
    mp3 = storage.get(db, storage.SAMPLES, sample["normalized_id"])
    record, fresh = records.begin_creation(db, provider=provider.name, user_id=str(user["_id"]),
                                           sha256=sample["sha256"], job_id=f"warm:{job_id}")
    record = ensure_remote_voice(db, provider, record, mp3, may_exist=not fresh)
    db["users"].update_one({"_id": user["_id"]}, {"$set": {
        "voice_clone_id": record["voice_id"], "voice_record_id": record["_id"], "voice_state": "ready",
        "updated_at": now()}})
    return record["voice_id"], True


def mark_missing(db: Database, user: dict[str, Any], voice_id: str) -> None:
    """The provider says the voice is gone: record it, and point the user at re-warming."""
    db["voices"].update_many({"voice_id": voice_id, "state": {"$in": ["ready", "creating"]}},
                             {"$set": {"state": "missing", "missing_at": now()}})
    db["users"].update_one({"_id": user["_id"], "voice_clone_id": voice_id},
                           {"$set": {"voice_state": "evicted", "voice_clone_id": None, "updated_at": now()}})
    user["voice_state"], user["voice_clone_id"] = "evicted", None
