from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Db, Jobs, PerformLimit, RecentUser, SettingsDep, Users
from api.responses import accepted
from shared.perform.routines import list_routines, normalize_language
from shared.perform.service import submit_perform

router = APIRouter(tags=["perform"])


class PerformRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routine_type: str = Field(min_length=1, max_length=64, examples=["morning_motivation"])
    topic: str = Field(min_length=1, max_length=1000, examples=["my first marathon on Sunday"],
                       description="What the note is about (1-200 characters after trimming).")


@router.get("/routines")
def routines(language: str | None = Query(None, description="english or spanish")) -> dict:
    """The routine types you can perform, with their titles in each language."""
    items = [r.to_public() for r in list_routines()]
    if language:
        lang = normalize_language(language)
        items = [{**r, "title": r["languages"][lang]["title"],
                  "description": r["languages"][lang]["description"]} for r in items]
    return {"routines": items}


@router.post("/perform", status_code=202, responses={
    202: {"description": "Accepted: `{job_id, status_url, events_url, job, quota}`"},
    402: {"description": "QUOTA_EXCEEDED"}, 409: {"description": "VOICE_CLONE_REQUIRED"},
    422: {"description": "VALIDATION_ERROR (unknown routine, bad topic, reused Idempotency-Key)"},
    429: {"description": "RATE_LIMITED (voice notes per user)"}})
def perform(body: PerformRequest, request: Request, user: RecentUser, _limit: PerformLimit, jobs: Jobs,
            settings: SettingsDep, db: Db, users: Users,
            idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    """Write and speak a voice note in your voice. Send an `Idempotency-Key` header to make
    retries safe: the same key and body return the same job."""
    view, created, quota = submit_perform(jobs, settings, user, body.routine_type, body.topic, idempotency_key,
                                          reread_user=lambda: users.read(db, str(user["_id"])))
    return accepted(request, view, quota=quota.to_dict(), replayed=not created)
