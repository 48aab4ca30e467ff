"""The voice pool: which users' voices are warm at the provider, within its slot limit.

Invariants (docs/ARCHITECTURE.md, "Voice pool"):
- Our voices present at the provider (creating + ready + evicting + delete_failed) never exceed
  the capacity: each holds a numbered slot in MongoDB with a unique index (records.py).
- A voice leased by a running synthesis is never evicted (lru.py picks only unleased voices,
  atomically, and tombstones the one it picks so it cannot be leased again meanwhile).
- Evicting is a real remote delete; the slot frees only when the provider confirms.
- A user whose voice was evicted is re-warmed from their stored sample on next use, and
  concurrent uses for one user create at most one voice (a per-user claim in MongoDB).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from pymongo.database import Database

from shared import metrics, storage
from shared.clock import now
from shared.config import Settings
from shared.errors import ProviderError, VoiceCloneRequired, VoiceLimitReached
from shared.pool import records
from shared.pool.lru import PoolOrder
from shared.pool.remote import delete_remote_voice, ensure_remote_voice
from shared.providers.voice.base import VoiceProvider
from shared.users import repository as users

log = logging.getLogger(__name__)

CAPACITY_KEY = "nv:pool:capacity"
#: how long an acquisition waits for a slot (all voices leased) before giving up
SLOT_WAIT_S = 120.0
#: how stale a voice's `last_used_at` in MongoDB may get
TOUCH_EVERY = timedelta(minutes=1)
#: a per-user warm claim older than this is abandoned (the claimant crashed)
WARM_CLAIM_STALE = timedelta(minutes=5)


@dataclass(frozen=True)
class Acquired:
    voice_id: str
    rewarmed: bool
    job_key: str  # the lease holder, for release()


class VoicePool:
    def __init__(self, db: Database, r: redis.Redis, provider: VoiceProvider, settings: Settings,
                 enqueue_delete: Callable[[str], Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.db, self.r, self.provider, self.settings = db, r, provider, settings
        self.order = PoolOrder(r)
        self.enqueue_delete = enqueue_delete
        self.sleep = sleep

    # ------------------------------------------------------------------ capacity

    def capacity(self) -> int:
        """The smaller of the configured capacity and the provider's free slots (refreshed by
        beat from the subscription); the configured value until the first refresh."""
        cached = self.r.get(CAPACITY_KEY)
        configured = self.settings.pool_capacity
        return min(configured, int(cached)) if cached is not None else configured

    def refresh_capacity(self) -> dict[str, int]:
        sub = self.provider.subscription()
        ours = records.slots_used(self.db, self.provider.name)
        foreign = sum(1 for v in self.provider.list_voices()
                      if v.category in (None, "cloned", "generated", "professional")
                      and records.record_id_suffix(v.name) is None)
        effective = max(0, min(self.settings.pool_capacity, sub.voice_limit - foreign))
        self.r.set(CAPACITY_KEY, effective)
        detail = {"configured": self.settings.pool_capacity, "provider_limit": sub.voice_limit,
                  "foreign": foreign, "ours": ours, "effective": effective}
        self.db["pool_state"].update_one({"_id": "capacity"}, {"$set": {**detail, "at": now()}}, upsert=True)
        return detail

    # ------------------------------------------------------------------ using voices

    def acquire(self, user: dict[str, Any], job_id: str) -> Acquired:
        """Lease the user's voice for a synthesis, re-warming it from the stored sample if it
        was evicted or lost. Waits (bounded) while every slot is in use."""
        job_key = f"perform:{job_id}"
        ttl = self.settings.perform_time_limit_s + 60
        self.ensure_order()
        deadline = time.monotonic() + SLOT_WAIT_S
        user_oid = user["_id"]
        fresh_user = user  # the caller's read, moments old: the warm path needs no other
        while True:
            voice_id = fresh_user.get("voice_clone_id")
            if voice_id and fresh_user.get("voice_state") == "ready":
                record = records.by_voice_id(self.db, voice_id)
                if record is not None and record["state"] == "ready" and self.order.lease(voice_id, job_key, ttl):
                    self._touch(record)
                    self.order.count("reuse")
                    metrics.pool_reused()
                    return Acquired(voice_id, False, job_key)
            if fresh_user is user:
                # before creating a voice, look again: the caller's read may predate a re-warm
                fresh_user = users.by_id(self.db, user_oid) or {}
                if fresh_user:
                    continue
                fresh_user = user
            sample = fresh_user.get("sample") or {}
            if not sample.get("normalized_id"):
                raise VoiceCloneRequired("There is no voice or stored sample for this account.")
            if users.claim_warming(self.db, user_oid, job_key, WARM_CLAIM_STALE):
                try:
                    # another run may have finished warming between our read and our claim
                    claimed = users.by_id(self.db, user_oid) or fresh_user
                    record = None
                    if not (claimed.get("voice_clone_id") and claimed.get("voice_state") == "ready"):
                        record = self._warm(claimed, claimed.get("sample") or sample, job_key, deadline)
                finally:
                    users.release_warming(self.db, user_oid, job_key)
                if record is None:
                    fresh_user = claimed
                    continue
                if self.order.lease(record["voice_id"], job_key, ttl):
                    return Acquired(record["voice_id"], True, job_key)
            # someone else is warming this user's voice, or it was evicted under us: retry
            if time.monotonic() > deadline:
                raise VoiceLimitReached("Timed out waiting for this account's voice to be ready.")
            self.sleep(0.25)
            fresh_user = users.by_id(self.db, user_oid) or user

    def release(self, acquired: Acquired) -> None:
        self.order.release(acquired.voice_id, acquired.job_key)

    def _warm(self, user: dict[str, Any], sample: dict[str, Any], job_key: str, deadline: float) -> dict:
        mp3 = storage.get(self.db, storage.SAMPLES, sample["normalized_id"])
        record = self.create_voice(str(user["_id"]), sample["sha256"], mp3, f"warm:{job_key}", deadline)
        users.set_voice_ready(self.db, user["_id"], record["voice_id"], record["_id"])
        log.info("voice re-warmed", extra={"voice_id": record["voice_id"]})
        return record

    def _touch(self, record: dict[str, Any]) -> None:
        """Note the use in MongoDB, at most every TOUCH_EVERY: the exact recency lives in the
        Redis order; MongoDB's copy only rebuilds that order and finds voices idle for hours."""
        ts = now()
        last = record.get("last_used_at")
        if last is None or ts - last >= TOUCH_EVERY:
            records.touch_last_used(self.db, record["_id"], ts)

    # ------------------------------------------------------------------ creating voices

    def create_voice(self, user_id: str, sha256: str, mp3: bytes, job_key: str,
                     deadline: float | None = None) -> dict[str, Any]:
        """Create a voice in a free slot, evicting the least recently used idle voice when the
        pool is full (or failing clearly when the pool is disabled)."""
        deadline = deadline or time.monotonic() + SLOT_WAIT_S
        attempt = 0
        while True:
            record, fresh = records.begin_creation(self.db, provider=self.provider.name, user_id=user_id,
                                                   sha256=sha256, job_id=job_key, capacity=self.capacity())
            if record is None:
                self._make_room(deadline, attempt)
                attempt += 1
                continue
            try:
                record = ensure_remote_voice(self.db, self.provider, record, mp3, may_exist=not fresh)
            except VoiceLimitReached:
                # The provider has fewer free slots than we thought (voices added outside our
                # control): learn the real capacity and make room before trying again.
                if not self.settings.provider_pool_enabled or time.monotonic() > deadline:
                    raise
                self._safe_refresh()
                self._make_room(deadline, attempt)
                attempt += 1
                continue
            self.order.add(record["voice_id"])
            if fresh:
                self.order.count("create")
                metrics.pool_created()
            self._report_size()
            return record

    def _make_room(self, deadline: float, attempt: int) -> None:
        if not self.settings.provider_pool_enabled:
            raise VoiceLimitReached(f"All {self.capacity()} voice slots are in use and the voice pool is "
                                    "disabled, so none can be freed.",
                                    action="Retry later, or ask an operator to enable PROVIDER_POOL_ENABLED.")
        if self.evict_one():
            return
        if time.monotonic() > deadline:
            raise VoiceLimitReached(f"All {self.capacity()} voice slots are busy with other notes.")
        self.sleep(min(2.0, 0.1 * (2 ** min(attempt, 5))))

    def evict_one(self, reason: str = "lru", used_before: float | None = None) -> bool:
        """Evict the least recently used voice that no synthesis is using (optionally only one
        idle since `used_before`); True if a slot was freed (the provider confirmed the delete)."""
        self.ensure_order()
        victim = self.order.pick_victim(used_before=used_before)
        if victim is None:
            return False
        try:
            record = records.mark_evicting(self.db, victim, reason)
            if record is None:
                return True  # a stale entry (already gone): the caller simply retries
            users.mark_voice_evicted(self.db, victim)
            try:
                delete_remote_voice(self.db, self.provider, str(record["_id"]))
            except ProviderError as exc:
                # still present remotely: it keeps its slot until a retry confirms the delete
                records.mark_delete_failed(self.db, record["_id"], exc.to_dict())
                if self.enqueue_delete is not None:
                    self.enqueue_delete(str(record["_id"]))
                log.warning("eviction delete failed", extra={"voice_id": victim, "error": exc.code})
                return False
            self.order.count("evict")
            metrics.pool_evicted()
            self._report_size()
            log.info("voice evicted", extra={"voice_id": victim, "reason": reason})
            return True
        finally:
            self.order.clear_tombstone(victim)

    def forget(self, voice_id: str) -> None:
        """Take a voice out of the recency order (replaced, missing or being deleted)."""
        self.order.remove(voice_id)

    def voice_lost(self, voice_id: str) -> None:
        """The provider says the voice is gone: free its slot and send its user to re-warming."""
        records.mark_missing(self.db, voice_id)
        users.mark_voice_evicted(self.db, voice_id)
        self.forget(voice_id)
        self._report_size()

    def _safe_refresh(self) -> None:
        try:
            self.refresh_capacity()
        except ProviderError as exc:
            log.warning("capacity refresh failed", extra={"error": exc.code})

    def _report_size(self) -> None:
        metrics.set_pool_size(records.slots_used(self.db, self.provider.name))

    # ------------------------------------------------------------------ the order

    def ensure_order(self) -> None:
        """Rebuild the LRU from the records if Redis lost it (flush, failover)."""
        if not self.order.is_built():
            self.rebuild_order()

    def rebuild_order(self) -> int:
        ready = list(self.db["voices"].find({"state": "ready", "voice_id": {"$ne": None}},
                                            {"voice_id": 1, "last_used_at": 1}))
        self.order.rebuild([(d["voice_id"], (d.get("last_used_at") or now()).timestamp()) for d in ready])
        return len(ready)
