"""The job record and its public view."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.errors import ErrorCode
from shared.jobs.tasks import Task

JobState = Literal["queued", "running", "succeeded", "failed"]
TERMINAL_STATES = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class JobKind:
    task: Task  # the Celery task: the API enqueues by name, never importing task bodies
    #: "module:function" called as f(db, job_doc, error) once a job of this kind has failed,
    #: whoever failed it (the task, a time limit, the stranded-job sweeper): it undoes what the
    #: job held (characters, a clone reservation). Named, not imported, so jobs depend on no
    #: domain package.
    on_failed: str | None = None

    @property
    def queue(self) -> str:
        return self.task.queue

    def failure_hook(self):
        if not self.on_failed:
            return None
        module, _, function = self.on_failed.partition(":")
        return getattr(importlib.import_module(module), function)


KINDS: dict[str, JobKind] = {
    "clone": JobKind(Task.CLONE, on_failed="shared.voices.clone:clone_job_failed"),
    "perform": JobKind(Task.PERFORM, on_failed="shared.perform.service:perform_job_failed"),
    "diagnostic": JobKind(Task.DIAGNOSTIC),
    "reconcile": JobKind(Task.RECONCILE_JOB),
}


class JobError(BaseModel):
    """Why a job failed: the same `{error, message, action}` as an error response."""

    error: ErrorCode
    message: str
    action: str


class JobView(BaseModel):
    """What clients see, by poll and by SSE alike."""

    job_id: str
    kind: str = Field(description="`clone`, `perform`, `diagnostic` or `reconcile`.", examples=["perform"])
    state: JobState
    stage: str | None = Field(None, description=(
        "What the worker is doing: perform `reserving`, `composing`, `acquiring_voice`, `synthesizing`, "
        "`mixing`, `storing`; clone `decoding`, `normalizing`, `checking`, `uploading`, `saving`; then "
        "`done` or `failed`."), examples=["synthesizing"])
    progress: float = Field(0.0, ge=0, le=1, description="0 to 1.")
    result: dict[str, Any] | None = None
    error: JobError | None = Field(None, description="Set once the job failed.")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seq: int = Field(0, description=(
        "Increases with every transition; lets clients drop stale updates. It is also the SSE event `id`."))
    timings: dict[str, float] | None = Field(None, description=(
        "Seconds the worker spent in each stage so far (`{stage: s}`; a repeated stage is summed)."))


def view_of(doc: dict[str, Any]) -> JobView:
    return JobView(job_id=doc["_id"], **{k: doc.get(k) for k in JobView.model_fields if k != "job_id"
                                          and k in doc})
