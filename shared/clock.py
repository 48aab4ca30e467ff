"""The one clock of the domain: UTC, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """UTC, to the millisecond: what BSON dates keep, so a value held in memory equals the one
    read back from MongoDB."""
    ts = datetime.now(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def period_of(ts: datetime | None = None) -> str:
    """`YYYY-MM`: the calendar month, UTC, a moment falls in; the quota's period. Here, not in
    the quota, because the account is created in its first period (shared.users)."""
    ts = ts or now()
    return f"{ts.year:04d}-{ts.month:02d}"
