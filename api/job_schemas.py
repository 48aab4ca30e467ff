"""Public shapes of jobs: the job as clients see it (by poll and by SSE alike) and the 202
answer of every endpoint that starts one.

The job machinery (model.py, service.py) depends on no domain package; only these public
shapes name each kind's result, so a generated client gets them typed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from shared.diagnostics import DiagnosticResult
from shared.jobs.model import JobView
from shared.perform.schemas import PerformResult
from shared.quota.schemas import QuotaView
from shared.voices.schemas import CloneResult

#: tried in this order; a result that is none of them (a reconcile report) is sent as it is
JobResult = Annotated[PerformResult | CloneResult | DiagnosticResult | dict[str, Any],
                      Field(union_mode="left_to_right")]


class Job(JobView):
    """A job: `queued → running → succeeded | failed`, with its current stage and progress.
    Once succeeded, `result` holds what it made (by `kind`); once failed, `error` says why."""

    result: JobResult | None = Field(None, description=(
        "Set once the job succeeded: a `PerformResult` for `perform`, a `CloneResult` for `clone`, a "
        "`DiagnosticResult` for `diagnostic`, the reconciliation report for `reconcile`."))

    @classmethod
    def of(cls, view: JobView) -> Job:
        return cls.model_validate(view.model_dump())


class JobAccepted(BaseModel):
    """The job was started. Follow it at `events_url` (SSE) or poll `status_url`."""

    job_id: str = Field(examples=["9f1c2e8a4b2c4f0e8d7a6b5c4d3e2f10"])
    status_url: str = Field(description="GET it for the job's current state (also sent as `Location`).",
                            examples=["/jobs/9f1c2e8a4b2c4f0e8d7a6b5c4d3e2f10"])
    events_url: str = Field(description="GET it as `text/event-stream` to follow the job live.",
                            examples=["/jobs/9f1c2e8a4b2c4f0e8d7a6b5c4d3e2f10/events"])
    job: Job


class PerformAccepted(JobAccepted):
    """A perform job was started (or, with a reused `Idempotency-Key`, found again)."""

    quota: QuotaView = Field(description="The quota once this note's characters are held.")
    replayed: bool = Field(description="True when the `Idempotency-Key` was seen before and this is that job.")
