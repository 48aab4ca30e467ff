from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AUTHENTICATED, Jobs, RecentUser
from api.job_events import RESYNC
from api.job_schemas import Job
from api.openapi import JOB_EVENTS, error_responses
from shared.errors import NotFound, RateLimited, ValidationFailed
from shared.jobs.model import TERMINAL_STATES, JobView

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=error_responses(AUTHENTICATED, NotFound, ValidationFailed))
HEARTBEAT_S = 15.0
#: how long an EventSource waits before it reconnects after the stream drops
RECONNECT_MS = 2000


@router.get("/{job_id}", name="get")
def get_job(job_id: str, user: RecentUser, jobs: Jobs) -> Job:
    """The job's current state (served from Redis; MongoDB when the mirror has expired).
    Another user's job answers 404."""
    return Job.of(jobs.get(job_id, owner_id=user.id))


def _event(view: JobView) -> str:
    return f"id: {view.seq}\nevent: job\ndata: {Job.of(view).model_dump_json()}\n\n"


class Published(NamedTuple):
    """A transition as the event hub received it, parsed and rendered once for every stream
    that follows its job (1,000 streams of 100 jobs would otherwise do it 10 times each)."""

    view: JobView
    event: str


def published(data: str) -> Published:
    """The event hub's decoder for job channels (api/main.py)."""
    view = JobView.model_validate_json(data)
    return Published(view, _event(view))


@router.get("/{job_id}/events", name="events", response_class=Response,
            responses={200: JOB_EVENTS, **error_responses(AUTHENTICATED, NotFound, ValidationFailed, RateLimited)})
async def job_events(job_id: str, request: Request, user: RecentUser, jobs: Jobs,
                     last_event_id: Annotated[str | None, Header(max_length=20, description=(
                         "The `id` of the last event received: only newer states are sent."))] = None,
                     ) -> StreamingResponse:
    """Push the job: its current state at once, then each transition; closes after the last.
    Each event's `id` is the job's sequence number: a client that reconnects with
    `Last-Event-ID` gets only what it has not seen. A comment line every 15 s keeps proxies
    from closing a quiet stream. Open streams are limited per user (429)."""
    owner = user.id
    await run_in_threadpool(jobs.get, job_id, owner)  # 404 before the stream starts
    state = request.app.state
    slot = await state.stream_slots.take(owner)  # 429 past the per-user cap
    seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def stream() -> AsyncIterator[str]:
        last_seq = seen
        try:
            # following starts before the current state is read, so no transition falls in between
            async with state.job_events.follow(job_id) as follower:
                items = [await run_in_threadpool(jobs.get, job_id, owner)]
                yield f"retry: {RECONNECT_MS}\n\n"
                while True:
                    out, ended = [], False
                    for item in items:
                        if item is RESYNC:
                            item = await run_in_threadpool(jobs.get, job_id, owner)
                        view, text = item if isinstance(item, Published) else (item, None)
                        if view is None:
                            continue
                        if view.seq > last_seq:
                            last_seq = view.seq
                            out.append(text or _event(view))
                        if view.state in TERMINAL_STATES:
                            ended = True
                            break
                    if out:  # what piled up goes out as one write
                        yield "".join(out)
                    if ended:
                        return
                    items = await follower.take(HEARTBEAT_S)
                    if not items:
                        yield ": heartbeat\n\n"
                        await state.stream_slots.renew(owner, slot)
                        # a quiet job is read again, in case a transition was never published
                        items = [await run_in_threadpool(jobs.get, job_id, owner)]
        finally:
            await state.stream_slots.give_back(owner, slot)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
