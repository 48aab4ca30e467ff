"""A small HTTP client for the New Visions API (used by the CLI and `make demo`).

Errors come back as ApiError carrying the server's `{error, message, action}`, so callers can
print them as they are; nothing here knows about the server's internals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, action: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.action = status, code, message, action


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- plumbing

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw) -> httpx.Response:
        try:
            resp = self.http.request(method, path, headers=self._headers(headers), **kw)
        except httpx.HTTPError as exc:
            raise ApiError(0, "UNREACHABLE", f"Cannot reach {self.base_url}: {exc}",
                           "Is the stack running? Start it with `make run`.") from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            raise ApiError(resp.status_code, body.get("error", f"HTTP_{resp.status_code}"),
                           body.get("message", resp.text[:200]), body.get("action", ""))
        return resp

    def json(self, method: str, path: str, **kw) -> Any:
        return self.request(method, path, **kw).json()

    # ----- endpoints

    def register(self, username: str, email: str, password: str, activation_code: str) -> dict:
        return self.json("POST", "/auth/register", json={"username": username, "email": email,
                                                        "password": password, "activation_code": activation_code})

    def login(self, username: str, password: str, device_token: str | None = None) -> dict:
        """`device_token`: the one an earlier login of this client was given; others' failed
        guesses at the password then never hold this client back."""
        headers = {"X-Device-Token": device_token} if device_token else None
        body = self.json("POST", "/auth/login", json={"username": username, "password": password}, headers=headers)
        self.token = body["access_token"]
        return body

    def me(self) -> dict:
        return self.json("GET", "/user/me")

    def upload_sample(self, path: Path) -> dict:
        with open(path, "rb") as fh:
            return self.json("POST", "/user/voice", files={"file": (path.name, fh, "application/octet-stream")})

    def voice_meta(self) -> dict:
        return self.json("GET", "/user/voice/meta")

    def perform(self, routine: str, topic: str, idempotency_key: str | None = None) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.json("POST", "/perform", json={"routine_type": routine, "topic": topic}, headers=headers)

    def routines(self) -> list[dict]:
        return self.json("GET", "/routines")["routines"]

    def job(self, job_id: str) -> dict:
        return self.json("GET", f"/jobs/{job_id}")

    def recordings(self, limit: int = 20, cursor: str | None = None) -> dict:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self.json("GET", "/recordings", params=params)

    def download(self, recording_id: str, dest: Path) -> Path:
        resp = self.request("GET", f"/recordings/{recording_id}/audio")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(resp.content)
        return dest

    def job_events(self, job_id: str, timeout_s: float = 600) -> Iterator[dict]:
        """Follow the job over SSE; yields each job view until the terminal one."""
        with self.http.stream("GET", f"/jobs/{job_id}/events", headers=self._headers(),
                              timeout=httpx.Timeout(timeout_s, connect=10)) as resp:
            if resp.status_code >= 400:
                resp.read()
                body = resp.json()
                raise ApiError(resp.status_code, body.get("error", "HTTP_ERROR"), body.get("message", ""),
                               body.get("action", ""))
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    def wait(self, job_id: str, on_update: Callable[[dict], None] | None = None, timeout_s: float = 600) -> dict:
        """The finished job, following SSE (and falling back to polling if the stream drops)."""
        deadline = time.monotonic() + timeout_s
        last: dict | None = None
        try:
            for view in self.job_events(job_id, timeout_s):
                last = view
                if on_update:
                    on_update(view)
                if view["state"] in ("succeeded", "failed"):
                    return view
        except httpx.HTTPError:
            pass
        while time.monotonic() < deadline:
            last = self.job(job_id)
            if on_update:
                on_update(last)
            if last["state"] in ("succeeded", "failed"):
                return last
            time.sleep(0.5)
        raise ApiError(0, "TIMEOUT", f"Job {job_id} did not finish in {timeout_s:.0f} s", "Check it later.")
