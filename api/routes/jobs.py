from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, Jobs
from shared.jobs.model import TERMINAL_STATES, JobView
from shared.jobs.service import events_channel

router = APIRouter(prefix="/jobs", tags=["jobs"])
KEEPALIVE_S = 15.0


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: str, user: CurrentUser, jobs: Jobs) -> JobView:
    """The job's current state (served from Redis; MongoDB when the mirror has expired)."""
    return jobs.get(job_id, owner_id=str(user["_id"]))


def _event(view: JobView) -> str:
    return f"id: {view.seq}\nevent: job\ndata: {view.model_dump_json()}\n\n"


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events; each `data` is the job as JSON."}})
async def job_events(job_id: str, request: Request, user: CurrentUser, jobs: Jobs) -> StreamingResponse:
    """Push the job: its current state at once, then each transition; closes after the last."""
    owner = str(user["_id"])
    await run_in_threadpool(jobs.get, job_id, owner)  # 404 before the stream starts
    pubsub = request.app.state.aredis.pubsub()
    # Subscribe before reading the current state, so no transition can fall in between.
    await pubsub.subscribe(events_channel(job_id))

    async def stream() -> AsyncIterator[str]:
        try:
            current = await run_in_threadpool(jobs.get, job_id, owner)
            last_seq = current.seq
            yield _event(current)
            if current.state in TERMINAL_STATES:
                return
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=KEEPALIVE_S)
                if message is None:
                    if await request.is_disconnected():
                        return
                    # Quiet for a while: re-read, in case a message was lost in a Redis blip.
                    current = await run_in_threadpool(jobs.get, job_id, owner)
                    if current.seq <= last_seq:
                        yield ": keep-alive\n\n"
                        continue
                else:
                    current = JobView.model_validate_json(message["data"])
                    if current.seq <= last_seq:
                        continue
                last_seq = current.seq
                yield _event(current)
                if current.state in TERMINAL_STATES:
                    return
        finally:
            await pubsub.aclose()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
