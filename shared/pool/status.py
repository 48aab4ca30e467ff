"""What GET /admin/voice-pool/status shows an operator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from shared.pool.schemas import PoolStatus
from shared.pool.service import VoicePool
from shared.users import repository as users


def pool_status(pool: VoicePool) -> PoolStatus:
    db = pool.db
    by_state = {d["_id"]: d["n"] for d in db["voices"].aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])}
    pool.ensure_order()
    owners = {d["voice_id"]: d for d in db["voices"].find({"state": "ready"}, {"voice_id": 1, "user_id": 1})}
    lru = [{"voice_id": voice_id, "user_id": (owners.get(voice_id) or {}).get("user_id"),
            "last_used_at": datetime.fromtimestamp(score, UTC).isoformat(), "in_use": pool.order.in_use(voice_id)}
           for voice_id, score in reversed(pool.order.order())]  # most recent first
    stats = pool.order.stats()
    creations, reuses, evictions = stats.get("create", 0), stats.get("reuse", 0), stats.get("evict", 0)
    capacity_doc = db["pool_state"].find_one({"_id": "capacity"}) or {}
    holding = sum(by_state.get(s, 0) for s in ("creating", "ready", "evicting", "delete_failed"))
    return PoolStatus.model_validate({
        "enabled": pool.settings.provider_pool_enabled,
        "strategy": pool.settings.pool_eviction_strategy,
        "provider": pool.provider.name,
        "capacity": {"effective": pool.capacity(), "configured": pool.settings.pool_capacity,
                     "provider_limit": capacity_doc.get("provider_limit"), "foreign": capacity_doc.get("foreign"),
                     "refreshed_at": capacity_doc.get("at")},
        "size": holding,
        "warm": by_state.get("ready", 0),
        "by_state": by_state,
        "lru": lru,
        "creations": creations,
        "reuses": reuses,
        "evictions": evictions,
        "reuse_ratio": round(reuses / (reuses + creations), 4) if reuses + creations else None,
        "pending_deletions": by_state.get("evicting", 0),
        "failed_deletions": by_state.get("delete_failed", 0),
        "last_reconcile": (db["pool_state"].find_one({"_id": "reconcile"}) or {}).get("report"),
        "voice_match": voice_match_distribution(db),
    })


def voice_match_distribution(db) -> dict[str, Any]:
    """Match scores (docs/VOICE_MATCH.md) of the users' current voices: count per band, the
    unscored ones (cloned before scoring, or the phrase failed), and score quartiles."""
    bands = {"close": 0, "fair": 0, "far": 0, "unscored": 0}
    scores = []
    for user in users.voice_matches(db):
        match = user.get("voice_match")
        if not match:
            bands["unscored"] += 1
            continue
        bands[match["band"]] += 1
        scores.append(match["score"])
    quartiles = None
    if scores:
        q1, median, q3 = (float(v) for v in np.percentile(scores, [25, 50, 75]))
        quartiles = {"q1": q1, "median": median, "q3": q3}
    return {"by_band": bands, "scored": len(scores), "quartiles": quartiles}
