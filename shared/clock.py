"""The one clock of the domain: UTC, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """UTC, to the millisecond: what BSON dates keep, so a value held in memory equals the one
    read back from MongoDB."""
    ts = datetime.now(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)
