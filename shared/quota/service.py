"""The monthly character quota: charged exactly once per job, never past the limit.

Each charge is one atomic update of the user document whose filter carries both guards:
the job is not among this period's charged jobs, and charCount + cost stays within
monthlyLimit. Two concurrent performs can never both pass, and a redelivered job can never
pay twice. A refund is the mirror image, keyed by the same job. The `charges` collection
keeps an audit line per job (ours beside what the provider says it billed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymongo
from bson import ObjectId
from pymongo.database import Database

from shared.errors import QuotaExceeded
from shared.jobs.service import now


def period_of(ts: datetime | None = None) -> str:
    ts = ts or now()
    return f"{ts.year:04d}-{ts.month:02d}"


@dataclass(frozen=True)
class QuotaState:
    charCount: int
    monthlyLimit: int
    charsUsedRaw: int
    period: str

    @property
    def remaining(self) -> int:
        return max(0, self.monthlyLimit - self.charCount)

    def to_dict(self) -> dict[str, Any]:
        return {"charCount": self.charCount, "monthlyLimit": self.monthlyLimit,
                "charsUsedRaw": self.charsUsedRaw, "charsUsedEffective": self.charCount,
                "remaining": self.remaining, "period": self.period}


def roll_over(db: Database, user_oid: ObjectId, at: datetime | None = None) -> bool:
    """Start a new quota period for the user if theirs has ended. Idempotent per period:
    whoever runs it (beat, or a perform that notices first) resets once."""
    period = period_of(at)
    result = db["users"].update_one(
        {"_id": user_oid, "quota_period": {"$ne": period}},
        {"$set": {"quota_period": period, "charCount": 0, "charsUsedRaw": 0, "charged_jobs": [],
                  "refunded_jobs": [], "quota_reset_at": now()}},
    )
    return result.modified_count == 1


def state(db: Database, user_oid: ObjectId, user: dict[str, Any] | None = None) -> QuotaState:
    """The user's quota now. `user`: the account document the caller has just read (the API's
    authenticated user); when it is already in the current period, the roll-over could change
    nothing and a re-read would return the same fields, so it is used as is."""
    if user is not None and user.get("quota_period") == period_of() and "charCount" in user:
        return _state(user)
    roll_over(db, user_oid)
    user = db["users"].find_one({"_id": user_oid}, {"charCount": 1, "monthlyLimit": 1, "charsUsedRaw": 1,
                                                    "quota_period": 1})
    return _state(user)


def _state(user: dict[str, Any]) -> QuotaState:
    return QuotaState(user.get("charCount", 0), user.get("monthlyLimit", 0), user.get("charsUsedRaw", 0),
                      user.get("quota_period") or period_of())


def require_some_left(db: Database, user_oid: ObjectId, user: dict[str, Any] | None = None) -> QuotaState:
    """The API's cheap precondition: refuse a perform when nothing is left this period."""
    current = state(db, user_oid, user)
    if current.remaining <= 0:
        raise QuotaExceeded(f"This month's {current.monthlyLimit} characters are used up.",
                            details={"quota": current.to_dict()})
    return current


def charge(db: Database, user_oid: ObjectId, job_id: str, *, raw: int, effective: int, model: str,
           provider: str) -> QuotaState:
    """Charge `effective` characters for the job, once. A second call for the same job is a
    no-op that returns the current state. Raises QuotaExceeded when it does not fit."""
    roll_over(db, user_oid)
    users = db["users"]
    updated = users.find_one_and_update(
        {"_id": user_oid, "charged_jobs": {"$ne": job_id}, "refunded_jobs": {"$ne": job_id},
         "$expr": {"$lte": [{"$add": [{"$ifNull": ["$charCount", 0]}, effective]}, "$monthlyLimit"]}},
        {"$inc": {"charCount": effective, "charsUsedRaw": raw}, "$push": {"charged_jobs": job_id}},
        projection={"charCount": 1, "monthlyLimit": 1, "charsUsedRaw": 1, "quota_period": 1},
        return_document=True,
    )
    if updated is None:
        user = users.find_one({"_id": user_oid})
        if job_id in (user.get("charged_jobs") or []):
            # already charged: exactly once. The audit line may be missing if the run that
            # charged died right after; a no-op when it is there.
            _audit_charge(db, job_id, user_oid, raw, effective, model, provider, user.get("quota_period"))
            return _state(user)
        current = _state(user)
        raise QuotaExceeded(
            f"This note needs {effective} characters; {current.remaining} of {current.monthlyLimit} are left "
            f"this month.", details={"quota": current.to_dict(), "needed": effective})
    _audit_charge(db, job_id, user_oid, raw, effective, model, provider, updated.get("quota_period"))
    return _state(updated)


def _audit_charge(db: Database, job_id: str, user_oid: ObjectId, raw: int, effective: int, model: str,
                  provider: str, period: str | None) -> None:
    try:
        db["charges"].update_one(
            {"_id": job_id},
            {"$setOnInsert": {"user_id": str(user_oid), "raw": raw, "effective": effective, "model": model,
                              "provider": provider, "period": period, "state": "charged",
                              "charged_at": now()}},
            upsert=True,
        )
    except pymongo.errors.DuplicateKeyError:
        pass  # two runs of the job upserted at once: the line exists, which is all we need


def record_provider_cost(db: Database, job_id: str, provider_cost: int | None) -> None:
    if provider_cost is not None:
        db["charges"].update_one({"_id": job_id}, {"$set": {"provider_cost": provider_cost}})


def refund(db: Database, user_oid: ObjectId, job_id: str) -> bool:
    """Give back what the job was charged, once. True when a refund happened now."""
    charge_doc = db["charges"].find_one({"_id": job_id})
    if charge_doc is None:
        return False
    result = db["users"].update_one(
        {"_id": user_oid, "charged_jobs": job_id},
        {"$inc": {"charCount": -charge_doc["effective"], "charsUsedRaw": -charge_doc["raw"]},
         "$pull": {"charged_jobs": job_id}, "$push": {"refunded_jobs": job_id}},
    )
    if result.modified_count:
        db["charges"].update_one({"_id": job_id}, {"$set": {"state": "refunded", "refunded_at": now()}})
        return True
    return False
