"""Periodic pool upkeep: reconcile with the provider, purge idle voices, refresh capacity.

Every function is idempotent and safe if two beats ever run: each takes a short Redis lock
so concurrent runs skip instead of racing, and every effect is conditioned on the state it
changes (a second run finds nothing left to do)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pymongo.database import Database

from shared.clock import now, period_of
from shared.errors import ProviderError, VoiceNotFound
from shared.pool import records
from shared.pool.remote import delete_remote_voice
from shared.pool.service import VoicePool
from shared.quota.service import roll_over
from shared.users import repository as users

log = logging.getLogger(__name__)

#: margin past the broker's redelivery of a dead run's message, before its `creating` record
#: is considered abandoned (a redelivered run adopts its voice by name until then)
ABANDON_MARGIN = timedelta(minutes=5)
#: a record this fresh may not be in a provider listing taken a moment ago
LISTING_MARGIN = timedelta(seconds=30)


@contextlib.contextmanager
def run_once(r, name: str, ttl_s: int = 300) -> Iterator[bool]:
    """A best-effort lock: yields False when another run of `name` holds it."""
    key, token = f"nv:lock:{name}", uuid.uuid4().hex
    acquired = bool(r.set(key, token, nx=True, ex=ttl_s))
    try:
        yield acquired
    finally:
        if acquired and r.get(key) == token:
            r.delete(key)


def creating_grace(settings) -> timedelta:
    """How long a `creating` record may belong to a live run: the visibility timeout (when the
    broker redelivers a dead worker's message; see celeryconfig) plus a margin."""
    return timedelta(seconds=settings.visibility_timeout_s) + ABANDON_MARGIN


def reconcile(pool: VoicePool, grace: timedelta | None = None) -> dict[str, Any]:
    """Bring the provider and our records in step; returns what it did."""
    db, provider = pool.db, pool.provider
    grace = grace if grace is not None else creating_grace(pool.settings)
    report = {"listed": 0, "orphans_deleted": 0, "adopted": 0, "stale_creating_closed": 0,
              "missing_marked": 0, "deletions_confirmed": 0, "deletions_retried": 0, "renamed": 0,
              "lru_rebuilt": False, "errors": []}
    listed_at = now()
    remote = list(provider.list_voices())
    report["listed"] = len(remote)
    remote_ids = {v.voice_id for v in remote}

    for voice in remote:
        if records.record_id_suffix(voice.name) is None:
            continue  # not ours: never touched
        record = db["voices"].find_one({"voice_id": voice.voice_id}) or db["voices"].find_one({"name": voice.name})
        try:
            _reconcile_remote(pool, voice, record, report, grace)
        except ProviderError as exc:
            report["errors"].append(f"{voice.voice_id}: {exc.code}")

    cutoff = listed_at - LISTING_MARGIN
    for record in db["voices"].find({"state": {"$in": ["ready", "evicting", "delete_failed"]},
                                     "voice_id": {"$ne": None}}):
        if record["voice_id"] in remote_ids or (record.get("ready_at") or record["created_at"]) > cutoff:
            continue
        if record["state"] == "ready":
            pool.voice_lost(record["voice_id"])
            report["missing_marked"] += 1
        else:
            records.mark_deleted(db, record["_id"], reason="gone_at_provider")
            report["deletions_confirmed"] += 1

    stale = db["voices"].find({"state": "creating", "created_at": {"$lt": now() - grace}})
    for record in stale:
        if not any(v.name == record["name"] for v in remote):
            records.mark_deleted(db, record["_id"], reason="creation_abandoned")
            report["stale_creating_closed"] += 1

    for record in db["voices"].find({"state": "delete_failed"}):
        try:
            delete_remote_voice(db, provider, str(record["_id"]))
            report["deletions_retried"] += 1
        except ProviderError as exc:
            report["errors"].append(f"{record.get('voice_id')}: {exc.code}")

    if not pool.order.is_built():
        pool.rebuild_order()
        report["lru_rebuilt"] = True
    else:
        _drop_stale_lru_entries(pool)
    db["pool_state"].update_one({"_id": "reconcile"}, {"$set": {"at": now(), "report": report}}, upsert=True)
    return report


def _reconcile_remote(pool: VoicePool, voice, record: dict | None, report: dict, grace: timedelta) -> None:
    db, provider = pool.db, pool.provider
    if record is not None and record.get("voice_id") not in (None, voice.voice_id):
        # A second remote voice under one record's name (a create whose answer was lost, made
        # again by the next run): the record uses the other one, so this one is an orphan.
        _delete_remote(provider, voice.voice_id)
        report["orphans_deleted"] += 1
        return
    if record is None or record["state"] in ("deleted", "missing"):
        # Ours by name, but no live record: an orphan (a crash after creation, a lost delete).
        _delete_remote(provider, voice.voice_id)
        report["orphans_deleted"] += 1
        return
    if record["state"] == "creating":
        if record["created_at"] > now() - grace:
            return  # its creator may still be running and will adopt it
        # The creating run died after the provider made the voice. Its user moved on (the job
        # failed or was retried under another record): free the slot for real.
        _delete_remote(provider, voice.voice_id)
        records.mark_deleted(db, record["_id"], reason="creation_abandoned")
        report["orphans_deleted"] += 1
        return
    if record["state"] == "ready" and voice.name != record["name"]:
        provider.rename_voice(voice.voice_id, record["name"])
        report["renamed"] += 1
    if record["state"] == "ready" and record.get("voice_id") is None:
        records.mark_ready(db, record["_id"], voice.voice_id)
        report["adopted"] += 1


def _delete_remote(provider, voice_id: str) -> None:
    try:
        provider.delete_voice(voice_id)
    except VoiceNotFound:
        pass


def _drop_stale_lru_entries(pool: VoicePool) -> None:
    ready = {d["voice_id"] for d in pool.db["voices"].find({"state": "ready"}, {"voice_id": 1})}
    for voice_id, _ in pool.order.order():
        if voice_id not in ready:
            pool.order.remove(voice_id)


def purge_idle(pool: VoicePool, idle: timedelta) -> int:
    """The `ttl` strategy: evict every unleased voice idle for longer than `idle`."""
    cutoff = time.time() - idle.total_seconds()
    evicted = 0
    while pool.evict_one(reason="ttl", used_before=cutoff):
        evicted += 1
    return evicted


def reset_quotas(db: Database) -> int:
    """Start the new quota period for every user still in an old one (once per period)."""
    period = period_of()
    done = 0
    for user in users.ids_outside_period(db, period):
        done += int(roll_over(db, user["_id"]))
    return done
