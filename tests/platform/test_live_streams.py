"""Live job streams under a burst: the API's own Redis plumbing (stream slots, the event hub),
built by the application's lifespan exactly as `uvicorn api.main:app` builds it, against the
session's real Redis. A burst of stream opens on a healthy stack is served, never refused."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from api.main import create_app
from shared.clock import now
from shared.jobs.model import JobView
from shared.jobs.service import events_channel

USERS, STREAMS_PER_USER = 100, 10  # 1,000 streams, each user at the default cap


def _view(job_id: str) -> JobView:
    ts = now()
    return JobView(job_id=job_id, kind="diagnostic", state="running", stage="checking", created_at=ts,
                   updated_at=ts, seq=2)


async def _with_app(settings, body):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return await body(app.state)


def test_a_burst_of_stream_opens_gets_a_slot_each_and_gives_them_all_back(settings, rds):
    """1,000 stream opens at once (as many as a busy process can have in flight): each takes its
    slot, and each slot is given back when its stream ends (a slot not given back would keep
    its user at the cap until its lease lapsed). redis-py's default pool refused every command
    past its 100th connection, and each refusal was answered 503."""
    users = [f"burst-{uuid.uuid4().hex}" for _ in range(USERS)]

    async def burst(state):
        slots = state.stream_slots
        owners = [u for u in users for _ in range(STREAMS_PER_USER)]
        taken = await asyncio.gather(*(slots.take(u) for u in owners))
        held = {u: rds.zcard(slots.PREFIX + u) for u in users}
        await asyncio.gather(*(slots.give_back(u, s) for u, s in zip(owners, taken)))
        return held

    held = asyncio.run(_with_app(settings, burst))
    assert set(held.values()) == {STREAMS_PER_USER}
    assert sum(rds.zcard(f"nv:sse:{u}") for u in users) == 0


def test_a_burst_of_followers_shares_one_subscription_per_job(settings, rds):
    """1,000 followers of 100 jobs arriving at once, while their slots are taken: every one
    follows, each job's channel has one subscriber, and a publish reaches all its followers as
    one decoded event."""
    jobs = [f"burst-{uuid.uuid4().hex}" for _ in range(USERS)]

    async def burst(state):
        async with contextlib.AsyncExitStack() as stack:
            async def open_stream(job_id: str):
                await state.stream_slots.take(job_id)  # the job's id stands in for its owner
                return await stack.enter_async_context(state.job_events.follow(job_id))

            followers = await asyncio.gather(*(open_stream(j) for j in jobs for _ in range(STREAMS_PER_USER)))
            numsub = dict(rds.pubsub_numsub(*[events_channel(j) for j in jobs]))
            for job_id in jobs:
                rds.publish(events_channel(job_id), _view(job_id).model_dump_json())
            received = await asyncio.gather(*(f.take(10.0) for f in followers))
        return numsub, received

    numsub, received = asyncio.run(_with_app(settings, burst))
    assert set(numsub.values()) == {1}
    assert [[item.view.job_id for item in items] for items in received] == [
        [j] for j in jobs for _ in range(STREAMS_PER_USER)]
    # decoded and rendered once per job, not once per stream
    assert len({id(items[0]) for items in received}) == USERS
