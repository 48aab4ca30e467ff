"""Shared steps for perform tests: a user with a ready voice, a perform, its job."""

from __future__ import annotations

import httpx

from tests import samples
from tests.conftest import wait_job


def user_with_voice(client: httpx.Client, users, **settings) -> tuple[dict, dict]:
    user, headers = users()
    resp = client.post("/user/voice", headers=headers,
                       files={"file": ("sample.mp3", samples.original(), "audio/mpeg")})
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "succeeded", job["error"]
    if settings:
        assert client.put("/user/settings", headers=headers, json=settings).status_code == 200
    return user, headers


def perform(client: httpx.Client, headers: dict, routine="morning_motivation", topic="my first 10k run",
            key: str | None = None) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/perform", headers={**headers, **extra}, json={"routine_type": routine, "topic": topic})


def perform_ok(client: httpx.Client, headers: dict, **kw) -> dict:
    resp = perform(client, headers, **kw)
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "succeeded", job["error"]
    return job
