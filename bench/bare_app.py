"""The submit benchmark's baseline: a bare FastAPI `POST /perform` served the same way as the
real API (uvicorn in a subprocess, same flags and worker count). It parses and validates the
same body model and answers 202 with a job-shaped JSON body, and does nothing else: no auth,
no stores, no queue. Served with `uvicorn bench.bare_app:app`."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI(title="bare baseline")


class PerformRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routine_type: str = Field(min_length=1, max_length=64)
    topic: str = Field(min_length=1, max_length=1000)


@app.post("/perform", status_code=202)
def perform(body: PerformRequest) -> JSONResponse:  # sync, like the real route (thread pool)
    job_id = uuid.uuid4().hex
    return JSONResponse({"job_id": job_id, "status_url": f"/jobs/{job_id}", "events_url": f"/jobs/{job_id}/events",
                         "job": {"job_id": job_id, "kind": "perform", "state": "queued",
                                 "routine_type": body.routine_type}}, status_code=202)
