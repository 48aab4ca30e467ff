"""Public shape of `GET /admin/voice-pool/status`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class PoolCapacity(BaseModel):
    effective: int = Field(description="Voices we may hold now: min(configured, provider limit - foreign).")
    configured: int = Field(description="POOL_CAPACITY.")
    provider_limit: int | None = Field(description="The provider account's voice limit, when last refreshed.")
    foreign: int | None = Field(description="Voices at the provider that are not ours.")
    refreshed_at: dt.datetime | None


class PooledVoice(BaseModel):
    voice_id: str
    user_id: str | None
    last_used_at: dt.datetime
    in_use: bool = Field(description="Leased by a running synthesis: never evicted while true.")


class MatchQuartiles(BaseModel):
    q1: float
    median: float
    q3: float


class VoiceMatchDistribution(BaseModel):
    """How close the users' current voices sound to their owners (docs/VOICE_MATCH.md)."""

    by_band: dict[str, int] = Field(description="Voices per band: close, fair, far, and unscored.",
                                    examples=[{"close": 3, "fair": 1, "far": 0, "unscored": 2}])
    scored: int
    quartiles: MatchQuartiles | None = Field(description="Of the 0-100 scores; null when none is scored.")


class PoolStatus(BaseModel):
    """The voice pool, for operators."""

    enabled: bool = Field(description="PROVIDER_POOL_ENABLED: whether voices are evicted when full.")
    strategy: str = Field(description="POOL_EVICTION_STRATEGY.", examples=["lru"])
    provider: str = Field(examples=["local"])
    capacity: PoolCapacity
    size: int = Field(description="Voices holding a slot (creating, ready, evicting, delete_failed).")
    warm: int = Field(description="Voices ready to speak.")
    by_state: dict[str, int] = Field(description="Voice records by state.")
    lru: list[PooledVoice] = Field(description="Ready voices, most recently used first.")
    creations: int
    reuses: int
    evictions: int
    reuse_ratio: float | None = Field(description="reuses / (reuses + creations); null before any.")
    pending_deletions: int
    failed_deletions: int
    last_reconcile: dict[str, Any] | None = Field(description="The last reconciliation's report.")
    voice_match: VoiceMatchDistribution
