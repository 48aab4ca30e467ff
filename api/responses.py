"""Shared response shapes."""

from __future__ import annotations

from fastapi import Request, Response

from api.job_schemas import Job, JobAccepted
from shared.jobs.model import JobView


def accepted(request: Request, response: Response, view: JobView, model: type[JobAccepted] = JobAccepted,
             **extra) -> JobAccepted:
    """`202 {job_id, status_url, events_url, job}` (plus the fields of `model` beyond those, in
    `extra`) for every endpoint that starts a job; `Location` is the status URL."""
    base = request.app.state.settings.public_base_url.rstrip("/")
    body = model(job_id=view.job_id, status_url=f"{base}/jobs/{view.job_id}",
                 events_url=f"{base}/jobs/{view.job_id}/events", job=Job.of(view), **extra)
    response.headers["Location"] = body.status_url
    return body
