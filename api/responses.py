"""Shared response shapes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.jobs.model import JobView


def accepted(request: Request, view: JobView, status_code: int = 202, **extra) -> JSONResponse:
    """`202 {job_id, status_url, events_url, job}` for every endpoint that starts a job
    (plus any endpoint-specific fields in `extra`)."""
    base = request.app.state.settings.public_base_url.rstrip("/")
    body = {
        "job_id": view.job_id,
        "status_url": f"{base}/jobs/{view.job_id}",
        "events_url": f"{base}/jobs/{view.job_id}/events",
        "job": view.model_dump(mode="json"),
        **extra,
    }
    return JSONResponse(body, status_code=status_code, headers={"Location": body["status_url"]})
