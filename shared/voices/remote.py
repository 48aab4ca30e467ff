"""Creating and deleting remote voices through our records (see records.py)."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.database import Database

from shared.errors import AppError
from shared.providers.errors import RequestOutcomeUnknownError, VoiceNotFoundError
from shared.providers.voice.base import VoiceProvider
from shared.voices import records

log = logging.getLogger(__name__)


def ensure_remote_voice(db: Database, provider: VoiceProvider, record: dict[str, Any], mp3: bytes,
                         *, may_exist: bool) -> dict:
    """Create the remote voice for a `creating` record, or adopt it if an earlier run of the
    same job created it (only then is the provider's list worth a look)."""
    if record["state"] == "ready":
        return record
    if may_exist:
        for remote in provider.list_voices():
            if remote.name == record["name"]:
                log.info("adopting voice created by an earlier run", extra={"voice_id": remote.voice_id})
                return records.mark_ready(db, record["_id"], remote.voice_id)
    labels = {"app": "newvisions", "user": record["user_id"], "sha12": record["sample_sha256"][:12]}
    try:
        voice_id = provider.create_voice(record["name"], mp3, labels)
    except RequestOutcomeUnknownError:
        # The provider may have created it: the record stays `creating` (holding its slot) so a
        # redelivery or reconciliation can adopt or delete the voice by name.
        raise
    except AppError:
        # Refused or never reached: nothing was created, so the record must not hold a slot.
        records.mark_deleted(db, record["_id"], reason="create_failed")
        raise
    return records.mark_ready(db, record["_id"], voice_id)


def delete_remote_voice(db: Database, provider: VoiceProvider, record_id: str) -> str:
    """Delete a voice scheduled for deletion. Returns the outcome; idempotent."""
    record = records.get(db, record_id)
    if record is None or record["state"] in ("deleted", "missing"):
        return "already_deleted"
    if record.get("voice_id"):
        try:
            provider.delete_voice(record["voice_id"])
        except VoiceNotFoundError:
            pass  # gone already: the slot is free either way
    records.mark_deleted(db, record["_id"], reason=record.get("evict_reason") or "deleted")
    return "deleted"
