from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AUTHENTICATED, JSON_BODY, LIMITED, Db, Jobs, RecentUser, SettingsDep, Users
from api.job_schemas import PerformAccepted
from api.openapi import LOCATION, error_responses
from api.responses import accepted
from shared import ratelimit
from shared.errors import QuotaExceeded, ValidationFailed, VoiceCloneRequired
from shared.perform.routines import list_routines, normalize_language
from shared.perform.schemas import RoutineList
from shared.perform.service import submit_perform

router = APIRouter()  # tagged per route: `routines-list`, `perform-create`


class PerformRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routine_type: str = Field(min_length=1, max_length=64, examples=["morning_motivation"])
    topic: str = Field(min_length=1, max_length=1000, examples=["my first marathon on Sunday"],
                       description="What the note is about (1-200 characters after trimming).")


@router.get("/routines", name="list", tags=["routines"], response_model_exclude_none=True,
            responses=error_responses(ValidationFailed))
def routines(language: str | None = Query(None, description="english or spanish")) -> RoutineList:
    """The routine types you can perform, with their titles in each language."""
    items = [r.to_public() for r in list_routines()]
    if language:
        lang = normalize_language(language)
        items = [{**r, "title": r["languages"][lang]["title"],
                  "description": r["languages"][lang]["description"]} for r in items]
    return RoutineList.model_validate({"routines": items})


@router.post("/perform", name="create", tags=["perform"], status_code=202, responses={
    202: {"headers": LOCATION},
    **error_responses(AUTHENTICATED, JSON_BODY, LIMITED, VoiceCloneRequired, QuotaExceeded)})
async def perform(body: PerformRequest, request: Request, response: Response, user: RecentUser,
                  jobs: Jobs, settings: SettingsDep, db: Db, users: Users,
            idempotency_key: Annotated[str | None, Header(max_length=200, description=(
                "Makes retries safe: the same key and body return the same job (`replayed`); the same "
                "key with another body is a 422."))] = None) -> PerformAccepted:
    """Write and speak a voice note in your voice. Refused at once with 402 when this month's
    characters cannot pay for the routine's shortest note, and 409 before a voice exists. Voice
    notes are limited per user (429). Follow the job at `events_url`; once it succeeded, its
    `result.recording_id` names the note."""
    def submit():
        # The rate limit, then the job: the blocking Redis and MongoDB calls of the submit path
        # in one worker-thread hand-off (a `def` rate-limit dependency plus a `def` route were
        # two, and each hand-off costs more CPU than the Redis call it carries; bench/README.md).
        ratelimit.check_perform(jobs.redis, settings, user.id)
        return submit_perform(jobs, settings, user, body.routine_type, body.topic, idempotency_key,
                              reread_user=lambda: users.read(db, user.id))

    view, created, quota = await run_in_threadpool(submit)
    return accepted(request, response, view, PerformAccepted, quota=quota.to_dict(), replayed=not created)
