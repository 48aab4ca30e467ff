"""Slot accounting of `records.begin_creation` against the session's MongoDB (no provider)."""

from __future__ import annotations

import uuid

from shared.pool import records


def _begin(db, provider: str, n: int, capacity: int):
    return records.begin_creation(db, provider=provider, user_id=f"u{n}", sha256=f"{n:x}" * 64,
                                  job_id=f"{provider}:{n}", capacity=capacity)


def test_a_shrunk_capacity_counts_the_voices_left_above_it(db):
    """Three voices in slots 0-2; the one in slot 0 is evicted and the capacity falls to 2 (the
    provider's limit fell, or the pool was tightened): two voices are still at the provider, so
    the pool is full. A new voice must wait for an eviction, not take the free slot 0 beside the
    voice left in slot 2 (that made three voices for a capacity of two)."""
    provider = f"unit-{uuid.uuid4().hex[:8]}"
    made = [_begin(db, provider, n, capacity=3)[0] for n in range(3)]
    assert sorted(r["slot"] for r in made) == [0, 1, 2]
    records.mark_deleted(db, next(r for r in made if r["slot"] == 0)["_id"], reason="lru")
    record, fresh = _begin(db, provider, 3, capacity=2)
    assert (record, fresh) == (None, True)
    assert records.slots_used(db, provider) == 2
    # once a second voice is evicted there is room again, within the new capacity
    records.mark_deleted(db, next(r for r in made if r["slot"] == 2)["_id"], reason="lru")
    record, fresh = _begin(db, provider, 3, capacity=2)
    assert fresh and record["slot"] == 0
    assert records.slots_used(db, provider) == 2


def test_candidate_slots_leave_no_room_for_two_creators_beside_a_voice_above_the_capacity():
    """Two creators that read the slots at the same moment draw from the same candidates, and
    the unique slot index lets only one have each: the candidates must fit in the capacity."""
    assert records.candidate_slots(set(), 3) == [0, 1, 2]
    assert records.candidate_slots({1}, 3) == [0, 2]
    assert records.candidate_slots({0, 1, 2}, 3) == []
    # capacity fell from 3 to 2 with a voice left in slot 2: one new voice fits, in one slot
    assert records.candidate_slots({2}, 2) == [0]
    assert records.candidate_slots({1, 2}, 2) == []
    assert records.candidate_slots({0, 2, 5}, 3) == []
    assert records.candidate_slots({2, 5}, 3) == [0]
    assert records.candidate_slots({0}, 0) == []
