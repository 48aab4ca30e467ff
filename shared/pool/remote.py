"""Creating and deleting remote voices through our records (see records.py)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from pymongo.database import Database

from shared.errors import AppError, ProviderUnavailable, RequestOutcomeUnknown, VoiceNotFound
from shared.pool import records
from shared.providers.voice.base import VoiceProvider

log = logging.getLogger(__name__)


#: a run creating a voice holds a claim on the record for this long, renewed while it waits on
#: the provider; a claim left by a killed run lapses after at most this long
CREATE_CLAIM_TTL_S = 15.0
#: how long a second run of the same job waits for the first one's creation to settle
CREATE_CLAIM_WAIT_S = 300.0


def ensure_remote_voice(db: Database, provider: VoiceProvider, record: dict[str, Any], mp3: bytes,
                         *, may_exist: bool, sleep=time.sleep) -> dict:
    """Create the remote voice for a `creating` record, or adopt it if an earlier run of the
    same job created it (only then is the provider's list worth a look).

    Two runs of one job at once (a duplicate delivery) share one record: a claim on it lets
    one of them talk to the provider while the other waits for the outcome, so they cannot
    create two voices."""
    if record["state"] == "ready":
        return record
    token = uuid.uuid4().hex
    deadline = time.monotonic() + CREATE_CLAIM_WAIT_S
    while not _claim(db, record["_id"], token):
        current = records.get(db, record["_id"])
        if current is not None and current["state"] == "ready":
            return current
        if current is None or current["state"] != "creating":
            raise ProviderUnavailable("The voice could not be created; another attempt failed.",
                                           provider=provider.name)
        if time.monotonic() > deadline:
            raise ProviderUnavailable("Timed out waiting for the voice to be created.", provider=provider.name)
        sleep(0.25)
    stop = threading.Event()
    keeper = threading.Thread(target=_keep_claim, args=(db, record["_id"], token, stop), daemon=True,
                              name="voice-create-claim")
    keeper.start()
    try:
        return _create_or_adopt(db, provider, records.get(db, record["_id"]) or record, mp3, may_exist=may_exist)
    finally:
        stop.set()
        keeper.join(timeout=5)
        records.release_creation_claim(db, record["_id"], token)


def _claim(db: Database, record_id, token: str) -> bool:
    return records.claim_creation(db, record_id, token, timedelta(seconds=CREATE_CLAIM_TTL_S))


def _keep_claim(db: Database, record_id, token: str, stop: threading.Event) -> None:
    while not stop.wait(CREATE_CLAIM_TTL_S / 3):
        try:
            records.renew_creation_claim(db, record_id, token, timedelta(seconds=CREATE_CLAIM_TTL_S))
        except Exception:  # noqa: BLE001 - a store blip: the next beat tries again
            log.warning("could not renew the voice creation claim", extra={"record_id": str(record_id)})


def _create_or_adopt(db: Database, provider: VoiceProvider, record: dict[str, Any], mp3: bytes,
                     *, may_exist: bool) -> dict:
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
    except RequestOutcomeUnknown:
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
        except VoiceNotFound:
            pass  # gone already: the slot is free either way
    records.mark_deleted(db, record["_id"], reason=record.get("evict_reason") or "deleted")
    return "deleted"
