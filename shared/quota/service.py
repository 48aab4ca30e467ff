"""The monthly character quota: a note holds characters before it is written, and is charged
its real length exactly once, in exactly one month.

The life of one perform job's charge (`charges` collection, `_id` = job id):
- `reserve` (before any paid call): the routine's longest note, or what is left if that is
  less, is held: the user's `charCount` grows by the hold, the job joins `charged_jobs` and
  `held.<job>` records the amount. One atomic update whose filter carries every guard: the job
  is not counted yet, and `charCount + hold` stays within `monthlyLimit`; so two concurrent
  performs can never both pass, and a redelivered job can never pay twice. The audit line is
  written first: a run that dies between the two writes is finished by the next run.
- `settle` (the note is stored): the hold becomes the note's real cost (`held.<job>` is the
  guard: only one settlement can find it), in the same write as `last_perform_at`.
- `release` (the job failed): the hold, or a settled charge, goes back, once.
A job's charge belongs to the month it was reserved in: a run redelivered after the month
rolled over finds its audit line from the earlier month and is not charged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymongo
from bson import ObjectId
from pymongo.database import Database

from shared.clock import now, period_of
from shared.errors import AppError, QuotaExceeded
from shared.users import repository as users
from shared.users.account import Account


def next_reset(period: str) -> datetime:
    """When the quota period `YYYY-MM` ends: the first instant of the next month, UTC."""
    year, month = (int(part) for part in period.split("-"))
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


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
                "remaining": self.remaining, "period": self.period,
                "resetsAt": next_reset(self.period).isoformat()}


@dataclass(frozen=True)
class Reservation:
    held: int  # effective characters held for the job
    period: str  # the month the job's charge belongs to
    settled: bool = False  # an earlier run of the job already settled it


def roll_over(db: Database, user_oid: ObjectId, at: datetime | None = None) -> bool:
    """Start a new quota period for the user if theirs has ended. Idempotent per period:
    whoever runs it (beat, or a perform that notices first) resets once."""
    return users.start_period(db, user_oid, period_of(at))


def _state(period: str | None, char_count: int, monthly_limit: int, chars_used_raw: int) -> QuotaState:
    """An account still in an ended month shows the fresh month it will roll over to."""
    current = period_of()
    if period != current:
        return QuotaState(0, monthly_limit, 0, current)
    return QuotaState(char_count, monthly_limit, chars_used_raw, current)


def state_of(user: dict[str, Any]) -> QuotaState:
    """The quota as this user document shows it."""
    return _state(user.get("quota_period"), user.get("charCount", 0), user.get("monthlyLimit", 0),
                  user.get("charsUsedRaw", 0))


def state_of_account(user: Account) -> QuotaState:
    """The quota as this account, read by the API, shows it."""
    return _state(user.quota_period, user.char_count, user.monthly_limit or 0, user.chars_used_raw)


def state(db: Database, user_oid: ObjectId) -> QuotaState:
    return state_of(users.quota_of(db, user_oid) or {})


def require_room_for(user: Account, needed: int) -> QuotaState:
    """The API's cheap precondition, from the user it already has: refuse a perform when what is
    left this month cannot pay for the shortest note the routine writes."""
    current = state_of_account(user)
    if current.remaining < needed:
        left = "nothing is" if current.remaining == 0 else f"only {current.remaining} are"
        raise QuotaExceeded(
            f"The shortest note of this routine needs {needed} characters; {left} left of this month's "
            f"{current.monthlyLimit}.", details={"quota": current.to_dict(), "needed": needed})
    return current


def reserve(db: Database, user: dict[str, Any], job_id: str, *, longest: int, shortest: int, model: str,
            provider: str) -> Reservation:
    """Hold up to `longest` effective characters for the job (what is left, if less, as long as
    it pays for `shortest`). Idempotent per job; raises QuotaExceeded when even the shortest
    note does not fit."""
    user_oid = user["_id"]
    period = period_of()
    if user.get("quota_period") != period:
        roll_over(db, user_oid)
        user = {**user, "charCount": 0, "charged_jobs": [], "quota_period": period}
    hold = min(longest, max(0, user.get("monthlyLimit", 0) - user.get("charCount", 0)))
    try:
        db["charges"].insert_one({"_id": job_id, "user_id": str(user_oid), "period": period, "state": "reserved",
                                  "held": hold, "model": model, "provider": provider, "reserved_at": now()})
    except pymongo.errors.DuplicateKeyError:
        earlier = db["charges"].find_one({"_id": job_id})
        if earlier["period"] != period or earlier["state"] == "charged":
            # charged in the month it was reserved in, never again (or settled by an earlier run)
            return Reservation(earlier["held"], earlier["period"], settled=earlier["state"] == "charged")
        if earlier["state"] != "reserved":
            raise AppError("This job's characters were already given back; it cannot run again.")
        hold = earlier["held"]
    for _ in range(3):
        if hold >= shortest and users.hold_characters(db, user_oid, job_id, period, hold):
            return Reservation(hold, period)
        fresh = users.quota_of(db, user_oid) or {}
        if job_id in (fresh.get("charged_jobs") or []):
            return Reservation(hold, period)  # an earlier run of the job held it
        current = state_of(fresh)
        if fresh.get("quota_period") != period:
            roll_over(db, user_oid)
        elif current.remaining < shortest:
            db["charges"].update_one({"_id": job_id, "state": "reserved"}, {"$set": {"state": "refused"}})
            raise QuotaExceeded(
                f"This note needs at least {shortest} characters; {current.remaining} of "
                f"{current.monthlyLimit} are left this month.",
                details={"quota": current.to_dict(), "needed": shortest})
        hold = min(longest, current.remaining)
        db["charges"].update_one({"_id": job_id, "state": "reserved"}, {"$set": {"held": hold}})
    raise QuotaExceeded("Other notes are using this month's characters right now; try again.")


def settle(db: Database, user_oid: ObjectId, job_id: str, reservation: Reservation, *, raw: int, effective: int,
           provider_cost: int | None, also_set: dict[str, Any] | None = None) -> None:
    """Turn the job's hold into its real cost, once. `also_set`: bookkeeping fields of the user
    written in the same update (e.g. last_perform_at)."""
    if reservation.settled:
        return
    effective = min(effective, reservation.held)  # the prompt's length cap makes this a no-op
    users.settle_characters(db, user_oid, job_id, reservation.period, held=reservation.held, effective=effective,
                            raw=raw, also_set=also_set)
    db["charges"].update_one({"_id": job_id, "state": "reserved"}, {"$set": {
        "state": "charged", "raw": raw, "effective": effective, "provider_cost": provider_cost,
        "charged_at": now()}})


def release(db: Database, user_oid: ObjectId, job_id: str) -> bool:
    """Give back what the failed job holds or was charged, once. True when something went back."""
    charge = db["charges"].find_one({"_id": job_id})
    if charge is None or charge["state"] not in ("reserved", "charged"):
        return False
    if charge["state"] == "reserved":
        returned = users.release_hold(db, user_oid, job_id, charge["period"], charge["held"])
        outcome = "released"
    else:
        returned = users.refund_charge(db, user_oid, job_id, charge["period"], effective=charge["effective"],
                                       raw=charge["raw"])
        outcome = "refunded"
    # the audit line says what happened to the charge even when its month has since rolled over
    db["charges"].update_one({"_id": job_id, "state": charge["state"]},
                             {"$set": {"state": outcome, f"{outcome}_at": now()}})
    return returned
