"""The job record and its public view."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

JobState = Literal["queued", "running", "succeeded", "failed"]
TERMINAL_STATES = frozenset({"succeeded", "failed"})
#: job kind -> (task name, queue); the API enqueues by name, never importing task bodies
TASKS: dict[str, tuple[str, str]] = {
    "clone": ("clone.run", "clone"),
    "perform": ("perform.run", "perform"),
    "diagnostic": ("maintenance.diagnostic", "maintenance"),
    "reconcile": ("maintenance.reconcile_job", "maintenance"),
}


class JobError(BaseModel):
    error: str
    message: str
    action: str


class JobView(BaseModel):
    """What clients see, by poll and by SSE alike."""

    job_id: str
    kind: str
    state: JobState
    stage: str | None = None
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: JobError | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seq: int = 0  # increases with every transition; lets clients drop stale updates
    #: seconds the worker spent in each stage so far ({stage: s}; a repeated stage is summed)
    timings: dict[str, float] | None = None


def view_of(doc: dict[str, Any]) -> JobView:
    return JobView(job_id=doc["_id"], **{k: doc.get(k) for k in JobView.model_fields if k != "job_id"
                                          and k in doc})
