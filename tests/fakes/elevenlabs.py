"""A fake ElevenLabs API, faithful enough to exercise the real adapter over HTTP.

Endpoints (the subset the service uses), with ElevenLabs' shapes and error bodies:

    POST   /v1/voices/add                 multipart name, files..., labels (JSON), remove_background_noise
    POST   /v1/voices/{voice_id}/edit     multipart name
    DELETE /v1/voices/{voice_id}
    GET    /v2/voices                     page_size, next_page_token, voice_type, category
    POST   /v1/text-to-speech/{voice_id}  JSON; ?output_format=mp3_<rate>_<kbps>; real MP3 out
    GET    /v1/user/subscription

Every one needs `xi-api-key`. The account has a strict limit of cloned voices (premade voices do
not count; foreign cloned voices can be seeded and do) and a character quota; synthesis bills
len(text) x the model's cost factor and says so in the `character-cost` header.

Faults and inspection, from Python (methods of `FakeElevenLabs`) or over HTTP under `/_fake/`
(for a fake in another process: `FakeElevenLabsControl`, or plain HTTP):

    GET  /_fake/state                 counters, voices, pending faults
    GET  /_fake/calls[?operation=]    the call log
    POST /_fake/reset                 back to the initial state and configuration
    POST /_fake/config                {"voice_limit", "character_limit", "character_count", "api_key"}
    POST /_fake/voices                {"name", "category": "cloned", "labels"}  seed a foreign voice
    POST /_fake/latency               {"seconds": 1.5, "operation": "synthesize" | null (all)}
    POST /_fake/fail                  {"operation", "faults": [{"status", "code", "message",
                                       "retry_after", "style"}]}  for the next len(faults) calls
    POST /_fake/failure_rate          {"operation", "probability", "seed", "fault": {...}}
    POST /_fake/down                  {"mode": "503" | "close" | null}

Operations are named after the port's methods: create_voice, rename_voice, delete_voice,
list_voices, synthesize, subscription.

Run it on its own:  python -m tests.fakes.elevenlabs --port 8765 --api-key K --voice-limit 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import logging
import math
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import httpx
import numpy as np
from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from shared.audio.codec import encode_mp3

OPERATIONS = ("create_voice", "rename_voice", "delete_voice", "list_voices", "synthesize", "subscription")
DEFAULT_API_KEY = "fake-elevenlabs-key"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
SECONDS_PER_CHARACTER = 0.06  # speech of ~16 characters per second
DEFAULT_MODEL_ID = "eleven_multilingual_v2"  # what the real API uses when none is given
SPEED_RANGE = (0.7, 1.2)
PREMADE_NAMES = ("Rachel", "Adam", "Bella", "Antoni", "Elli", "Josh", "Arnold", "Domi")
STYLES = ("status", "code", "string", "validation", "html", "close")

_DEFAULT_CODES = {
    400: "bad_request", 401: "invalid_api_key", 404: "not_found", 408: "request_timeout",
    422: "validation_error", 429: "rate_limit_exceeded", 500: "internal_server_error",
    502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}
_DEFAULT_MESSAGES = {
    "invalid_api_key": "Invalid API key",
    "quota_exceeded": "This request exceeds your quota. You have 0 credits remaining.",
    "voice_limit_reached": "You have reached your maximum amount of custom voices.",
    "voice_not_found": "A voice with the voice_id was not found.",
    "rate_limit_exceeded": "You are sending requests too quickly.",
    "system_busy": "Our services are experiencing high traffic; please retry later.",
    "concurrent_limit_exceeded": "Too many concurrent requests for your subscription.",
    "too_many_concurrent_requests": "Too many concurrent requests for your subscription.",
}


def cost_factor(model_id: str) -> float:
    """Credits per character as ElevenLabs bills them: Flash and Turbo at half price."""
    return 0.5 if ("flash" in model_id or "turbo" in model_id) else 1.0


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One failure to answer with.

    style: "status" -> {"detail": {"status": code, "message": ...}} (classic ElevenLabs),
           "code"   -> {"detail": {"code": code, "message": ...}} (newer responses),
           "string" -> {"detail": message}, "validation" -> FastAPI's 422 list,
           "html"   -> a load balancer's HTML page, "close" -> headers then the connection drops."""

    status: int = 503
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    style: str = "status"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}")

    @classmethod
    def coerce(cls, spec: Fault | int | tuple | dict) -> Fault:
        """Accept Fault(503), 503, (429, "rate_limit_exceeded"), or {"status": 429, ...}."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, int):
            return cls(status=spec)
        if isinstance(spec, tuple):
            return cls(*spec)
        if isinstance(spec, dict):
            return cls(**spec)
        raise TypeError(f"cannot make a Fault from {spec!r}")

    def resolved_code(self) -> str:
        return self.code or _DEFAULT_CODES.get(self.status, f"http_{self.status}")

    def resolved_message(self) -> str:
        return self.message or _DEFAULT_MESSAGES.get(self.resolved_code(), f"Injected failure {self.status}.")


@dataclass
class FakeVoice:
    voice_id: str
    name: str
    category: str  # "cloned" | "premade" | "generated" | "professional"
    labels: dict[str, str] = field(default_factory=dict)
    seq: int = 0  # creation order; the pagination cursor
    created_at_unix: int = 0
    sample_sizes: list[int] = field(default_factory=list)  # bytes of each uploaded file
    remove_background_noise: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id, "name": self.name, "category": self.category,
            "labels": dict(self.labels), "description": None, "preview_url": None,
            "samples": [{"sample_id": f"{self.voice_id}-{i}", "size_bytes": size}
                        for i, size in enumerate(self.sample_sizes)] or None,
            "settings": None, "is_owner": self.category != "premade",
            "created_at_unix": self.created_at_unix,
        }


@dataclass
class CallRecord:
    operation: str
    method: str
    path: str
    at: float
    status: int | None = None  # None while the request is being answered
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    client: str | None = None  # the caller's address (which host called, in tests/hosts)


@dataclass
class _FailureRate:
    probability: float
    fault: Fault
    rng: random.Random


class FakeElevenLabs:
    """The fake account's state. Thread-safe: tests change it while the server thread serves."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, *, voice_limit: int = 3,
                 character_limit: int = 1_000_000, premade_voices: int = 3, seed: int = 0) -> None:
        if not 0 <= premade_voices <= len(PREMADE_NAMES):
            raise ValueError(f"premade_voices must be within 0-{len(PREMADE_NAMES)}")
        self._initial = {"api_key": api_key, "voice_limit": voice_limit, "character_limit": character_limit}
        self._premade_count = premade_voices
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    # --- setup and inspection ---------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state right after construction: voices, counters, faults and config."""
        with self._lock:
            self.api_key: str = self._initial["api_key"]
            self.voice_limit: int = self._initial["voice_limit"]
            self.character_limit: int = self._initial["character_limit"]
            self.character_count = 0
            self.created_total = 0
            self.deleted_total = 0
            self.max_voices_seen = 0
            self._voices: dict[str, FakeVoice] = {}
            self._seq = itertools.count(1)
            self._rng = random.Random(self._seed)
            self._calls: list[CallRecord] = []
            self.clear_faults()
            for name in PREMADE_NAMES[: self._premade_count]:
                self._insert(name, "premade", {})

    def configure(self, *, api_key: str | None = None, voice_limit: int | None = None,
                  character_limit: int | None = None, character_count: int | None = None) -> None:
        with self._lock:
            if api_key is not None:
                self.api_key = api_key
            if voice_limit is not None:
                self.voice_limit = voice_limit
            if character_limit is not None:
                self.character_limit = character_limit
            if character_count is not None:
                self.character_count = character_count

    def seed_voice(self, name: str, *, category: str = "cloned", labels: dict[str, str] | None = None) -> str:
        """Add a voice made elsewhere (another app on the same account). Ignores the limit:
        the account may already be over it, as real accounts are after a downgrade."""
        with self._lock:
            voice = self._insert(name, category, labels or {})
            self._note_count()
            return voice.voice_id

    @property
    def voices(self) -> list[FakeVoice]:
        with self._lock:
            return [FakeVoice(**asdict(v)) for v in self._voices.values()]

    def voice(self, voice_id: str) -> FakeVoice | None:
        with self._lock:
            v = self._voices.get(voice_id)
            return FakeVoice(**asdict(v)) if v else None

    def voice_names(self, category: str | None = "cloned") -> list[str]:
        with self._lock:
            return [v.name for v in self._voices.values() if category is None or v.category == category]

    @property
    def cloned_count(self) -> int:
        with self._lock:
            return sum(1 for v in self._voices.values() if v.category == "cloned")

    @property
    def calls(self) -> list[CallRecord]:
        with self._lock:
            return [CallRecord(**asdict(c)) for c in self._calls]

    def call_count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self._calls if operation is None or c.operation == operation)

    def in_flight(self) -> int:
        """Requests received and not yet answered (sleeping on latency, say)."""
        with self._lock:
            return sum(1 for c in self._calls if c.status is None)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is being answered: a request the client gave up on still runs
        to its end here (as at the real provider), and may change the state when it does."""
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight()} request(s) still in flight after {timeout} s")
            time.sleep(0.01)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view for /_fake/state (the API key is left out)."""
        with self._lock:
            return {
                "voice_limit": self.voice_limit,
                "character_limit": self.character_limit,
                "character_count": self.character_count,
                "cloned_count": self.cloned_count,
                "created_total": self.created_total,
                "deleted_total": self.deleted_total,
                "max_voices_seen": self.max_voices_seen,
                "calls": {op: self.call_count(op) for op in OPERATIONS},
                "in_flight": self.in_flight(),
                "voices": [v.to_api() for v in self._voices.values()],
                "faults": {
                    "down": self._down,
                    "latency": {op or "*": s for op, s in self._latency.items()},
                    "pending": {op: [asdict(f) for f in q] for op, q in self._pending.items() if q},
                    "failure_rates": {op: {"probability": r.probability, "fault": asdict(r.fault)}
                                      for op, r in self._rates.items()},
                },
            }

    # --- fault switches ---------------------------------------------------------------------

    def clear_faults(self) -> None:
        with self._lock:
            self._latency: dict[str | None, float] = {}
            self._pending: dict[str, list[Fault]] = {}
            self._rates: dict[str, _FailureRate] = {}
            self._down: str | None = None

    def set_latency(self, seconds: float, operation: str | None = None) -> None:
        """Delay answers by `seconds` (0 clears), for one operation or, with None, for all.
        A per-operation latency replaces the global one for that operation."""
        _check_operation(operation, allow_none=True)
        with self._lock:
            if seconds > 0:
                self._latency[operation] = float(seconds)
            else:
                self._latency.pop(operation, None)

    def fail_next(self, operation: str, *faults: Fault | int | tuple | dict) -> None:
        """Answer the next len(faults) calls of `operation` with these faults, in order."""
        _check_operation(operation)
        with self._lock:
            self._pending.setdefault(operation, []).extend(Fault.coerce(f) for f in faults)

    def set_failure_rate(self, operation: str, probability: float, fault: Fault | int | tuple | dict = 503,
                         *, seed: int = 0) -> None:
        """Fail each call of `operation` with `probability` (0 clears); seeded, so repeatable."""
        _check_operation(operation)
        with self._lock:
            if probability > 0:
                self._rates[operation] = _FailureRate(probability, Fault.coerce(fault), random.Random(seed))
            else:
                self._rates.pop(operation, None)

    def set_down(self, mode: str | None = "503") -> None:
        """"503": every call answers 503 (an HTML page, as a load balancer would); "close": every
        connection drops after the headers; None: back up."""
        if mode not in (None, "503", "close"):
            raise ValueError("mode must be '503', 'close' or None")
        with self._lock:
            self._down = mode

    # --- the request pipeline ----------------------------------------------------------------

    async def handle(self, operation: str, request: Request,
                     logic: Callable[[Request, CallRecord], Awaitable[Response]]) -> Response:
        record = CallRecord(operation, request.method, request.url.path, time.time(),
                            client=request.client.host if request.client else None)
        with self._lock:
            self._calls.append(record)
        try:
            response = await self._answer(operation, request, record, logic)
        except BaseException:
            with self._lock:  # a bug in the fake, or shutdown: never leave the call "in flight"
                record.status, record.code = 500, "fake_error"
            raise
        with self._lock:
            record.status = response.status_code
            record.code = getattr(response, "error_code", None)
        return response

    async def _answer(self, operation: str, request: Request, record: CallRecord,
                      logic: Callable[[Request, CallRecord], Awaitable[Response]]) -> Response:
        # Take the whole upload first, as the real service does before working on it: a client
        # that gives up during the latency below must not keep the request from completing.
        await request.body()
        delay = self._latency_for(operation)
        if delay:
            await asyncio.sleep(delay)  # does not hold up the other requests
        fault = self._take_fault(operation)
        if fault is not None:
            return _fault_response(fault)
        if request.headers.get("xi-api-key") != self.api_key:
            return _error(401, "invalid_api_key", "Invalid API key")
        return await logic(request, record)

    def _latency_for(self, operation: str) -> float:
        with self._lock:
            return self._latency.get(operation, self._latency.get(None, 0.0))

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            if self._down == "503":
                return Fault(503, style="html")
            if self._down == "close":
                return Fault(200, style="close")
            queue = self._pending.get(operation)
            if queue:
                return queue.pop(0)
            rate = self._rates.get(operation)
            if rate is not None and rate.rng.random() < rate.probability:
                return rate.fault
            return None

    # --- endpoint logic ----------------------------------------------------------------------

    async def add_voice(self, request: Request, record: CallRecord) -> Response:
        form = await request.form()
        name = form.get("name")
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        missing = [loc for loc, ok in (("name", isinstance(name, str) and name.strip()), ("files", files)) if not ok]
        if missing:
            return _validation_error(*(("body", loc) for loc in missing))
        labels, problem = _parse_labels(form.get("labels"))
        if problem:
            return _validation_error(("body", "labels"), msg=problem, kind="value_error")
        noise = form.get("remove_background_noise", "false")
        if noise not in ("true", "false"):
            return _validation_error(("body", "remove_background_noise"), msg="Input should be a valid boolean",
                                     kind="bool_parsing")
        sizes = [len(await f.read()) for f in files]
        if not all(sizes):
            return _error(400, "invalid_file", "One of the uploaded files is empty.")
        record.details = {"name": name, "sample_sizes": sizes, "labels": labels}
        with self._lock:
            if self.cloned_count >= self.voice_limit:
                return _error(400, "voice_limit_reached",
                              f"You have reached your maximum amount of custom voices "
                              f"({self.cloned_count} / {self.voice_limit}). You can upgrade your "
                              f"subscription to increase your custom voice limit.")
            voice = self._insert(name, "cloned", labels, sizes, noise == "true")
            self.created_total += 1
            self._note_count()
        return JSONResponse({"voice_id": voice.voice_id, "requires_verification": False})

    async def edit_voice(self, request: Request, record: CallRecord) -> Response:
        voice_id = request.path_params["voice_id"]
        form = await request.form()
        name = form.get("name")
        if not (isinstance(name, str) and name.strip()):
            return _validation_error(("body", "name"))
        labels, problem = _parse_labels(form.get("labels"))
        if problem:
            return _validation_error(("body", "labels"), msg=problem, kind="value_error")
        record.details = {"voice_id": voice_id, "name": name}
        with self._lock:
            voice = self._voices.get(voice_id)
            if voice is None:
                return _voice_not_found(voice_id, 404)
            if voice.category == "premade":
                return _error(400, "voice_not_editable", "Premade voices cannot be edited.")
            voice.name = name
            if labels:
                voice.labels = labels
        return JSONResponse({"status": "ok"})

    async def delete_voice(self, request: Request, record: CallRecord) -> Response:
        voice_id = request.path_params["voice_id"]
        record.details = {"voice_id": voice_id}
        with self._lock:
            voice = self._voices.get(voice_id)
            if voice is None:
                return _voice_not_found(voice_id, 404)
            if voice.category == "premade":
                return _error(400, "voice_not_deletable", "Premade voices cannot be deleted.")
            del self._voices[voice_id]
            self.deleted_total += 1
        return JSONResponse({"status": "ok"})

    async def list_voices(self, request: Request, record: CallRecord) -> Response:
        query = request.query_params
        try:
            page_size = int(query.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            return _validation_error(("query", "page_size"), msg="Input should be a valid integer", kind="int_parsing")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return _validation_error(("query", "page_size"), msg=f"page_size must be within 1-{MAX_PAGE_SIZE}",
                                     kind="value_error")
        after = _decode_token(query.get("next_page_token"))
        if after is None:
            return _error(400, "invalid_page_token", "The next_page_token is not valid.")
        keep = _voice_filter(query.get("voice_type"), query.get("category"))
        with self._lock:
            matching = [v for v in self._voices.values() if keep(v)]
            page = [v for v in matching if v.seq > after][:page_size]
            has_more = bool(page) and any(v.seq > page[-1].seq for v in matching)
            body = {
                "voices": [v.to_api() for v in page],
                "has_more": has_more,
                "total_count": len(matching),
                "next_page_token": _encode_token(page[-1].seq) if has_more else None,
            }
        record.details = {"page_size": page_size, "returned": len(page)}
        return JSONResponse(body)

    async def text_to_speech(self, request: Request, record: CallRecord) -> Response:
        voice_id = request.path_params["voice_id"]
        fmt = re.fullmatch(r"mp3_(22050|24000|44100)_(32|64|96|128|192)",
                           request.query_params.get("output_format", "mp3_44100_128"))
        if fmt is None:
            return _error(400, "invalid_output_format", "This fake only speaks mp3_<rate>_<kbps>.")
        try:
            body = await request.json()
        except ValueError:
            return _validation_error(("body",), msg="JSON decode error", kind="json_invalid")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return _validation_error(("body", "text"))
        model_id = body.get("model_id") or DEFAULT_MODEL_ID
        settings = body.get("voice_settings") or {}
        problem = _settings_problem(settings)
        if problem:
            return _error(400, "invalid_voice_settings", problem)
        cost = math.ceil(len(text) * cost_factor(model_id))
        record.details = {"voice_id": voice_id, "model_id": model_id, "characters": len(text),
                          "voice_settings": settings, "character_cost": cost}
        with self._lock:
            if voice_id not in self._voices:
                return _voice_not_found(voice_id, 400)
            remaining = self.character_limit - self.character_count
            if cost > remaining:
                return _error(401, "quota_exceeded",
                              f"This request exceeds your quota of {self.character_limit}. You have "
                              f"{max(0, remaining)} credits remaining, while {cost} credits are required "
                              f"for this request.")
            self.character_count += cost
        audio = await asyncio.to_thread(render_speech, text, int(fmt.group(1)), int(fmt.group(2)))
        return Response(audio, media_type="audio/mpeg",
                        headers={"character-cost": str(cost), "request-id": uuid.uuid4().hex})

    async def subscription(self, request: Request, record: CallRecord) -> Response:
        with self._lock:
            return JSONResponse({
                "tier": "creator", "status": "active", "currency": "usd",
                "character_count": self.character_count, "character_limit": self.character_limit,
                "can_extend_character_limit": False, "allowed_to_extend_character_limit": False,
                "next_character_count_reset_unix": int(time.time()) + 30 * 86400,
                "voice_limit": self.voice_limit, "voice_slots_used": self.cloned_count,
                "professional_voice_limit": 1, "professional_voice_slots_used": 0,
                "max_voice_add_edits": 95, "voice_add_edit_counter": self.created_total,
                "can_extend_voice_limit": False, "can_use_instant_voice_cloning": True,
                "can_use_professional_voice_cloning": True, "billing_period": "monthly_period",
                "character_refresh_period": "monthly_period",
            })

    # --- helpers (call with the lock held) ---------------------------------------------------

    def _insert(self, name: str, category: str, labels: dict[str, str], sizes: list[int] | None = None,
                noise: bool = False) -> FakeVoice:
        voice_id = "".join(self._rng.choices(string.ascii_letters + string.digits, k=20))
        voice = FakeVoice(voice_id, name, category, dict(labels), next(self._seq), int(time.time()),
                          list(sizes or []), noise)
        self._voices[voice_id] = voice
        return voice

    def _note_count(self) -> None:
        self.max_voices_seen = max(self.max_voices_seen, self.cloned_count)


def _check_operation(operation: str | None, allow_none: bool = False) -> None:
    if operation is None and allow_none:
        return
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; one of {OPERATIONS}")


# --- responses ------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, *, style: str = "status",
           headers: dict[str, str] | None = None) -> Response:
    if style == "code":
        body: Any = {"detail": {"type": "error", "code": code, "message": message,
                                "request_id": uuid.uuid4().hex}}
    elif style == "string":
        body = {"detail": message}
    else:
        body = {"detail": {"status": code, "message": message}}
    response = JSONResponse(body, status_code=status, headers=headers)
    response.error_code = code  # for the call log
    return response


def _voice_not_found(voice_id: str, status: int) -> Response:
    return _error(status, "voice_not_found", f"A voice with the voice_id {voice_id} was not found.")


def _validation_error(*locs: tuple[str, ...], msg: str = "Field required", kind: str = "missing") -> Response:
    response = JSONResponse(
        {"detail": [{"type": kind, "loc": list(loc), "msg": msg, "input": None} for loc in locs]},
        status_code=422,
    )
    response.error_code = "validation_error"
    return response


class _ConnectionDropped(Exception):
    """Raised on purpose to make the server close the connection mid-answer."""


class _DropConnectionResponse(Response):
    """Headers promising a body, a few bytes of it, then the connection closes.

    ASGI has no "close the socket" message; uvicorn closes the transport when the app fails after
    the response started, which is exactly the failure a client sees on a connection reset."""

    def __init__(self) -> None:
        super().__init__(status_code=200)
        self.error_code = "connection_dropped"

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"voice', "more_body": True})
        raise _ConnectionDropped()


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _ConnectionDropped))


_HIDE_DROPPED = _HideDroppedConnections()  # one instance: addFilter() then ignores repeats


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    if fault.style == "close":
        return _DropConnectionResponse()
    if fault.style == "html":
        response = HTMLResponse(f"<html><head><title>{fault.status} Service Unavailable</title></head>"
                                f"<body><h1>{fault.status}</h1> The server is temporarily unable to "
                                f"service your request.</body></html>", status_code=fault.status, headers=headers)
        response.error_code = f"http_{fault.status}"
        return response
    if fault.style == "validation":
        response = _validation_error(("body", fault.code or "field"), msg=fault.resolved_message(), kind="value_error")
        response.status_code = fault.status
        return response
    return _error(fault.status, fault.resolved_code(), fault.resolved_message(), style=fault.style, headers=headers)


# --- request parsing ------------------------------------------------------------------------


def _parse_labels(raw: Any) -> tuple[dict[str, str], str | None]:
    if raw is None or raw == "":
        return {}, None
    if not isinstance(raw, str):
        return {}, "labels must be a JSON string"
    try:
        labels = json.loads(raw)
    except ValueError:
        return {}, "labels must be valid JSON"
    if labels is None:
        return {}, None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return {}, "labels must be a JSON object of strings"
    return labels, None


def _settings_problem(settings: Any) -> str | None:
    if not isinstance(settings, dict):
        return "voice_settings must be an object"
    for key in ("stability", "similarity_boost", "style"):
        value = settings.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            return f"{key} must be between 0 and 1"
    speed = settings.get("speed")
    if speed is not None and not (isinstance(speed, (int, float)) and SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]):
        return f"speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}"
    return None


def _voice_filter(voice_type: str | None, category: str | None) -> Callable[[FakeVoice], bool]:
    def keep(voice: FakeVoice) -> bool:
        if category and voice.category != category:
            return False
        if voice_type in ("personal", "non-default", "workspace"):
            return voice.category != "premade"
        if voice_type == "default":
            return voice.category == "premade"
        return True

    return keep


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int | None:
    """The cursor (creation seq of the last voice sent), 0 for the first page, None if invalid."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        return int(json.loads(base64.urlsafe_b64decode(padded))["after"])
    except (ValueError, KeyError, TypeError):
        return None


# --- audio ----------------------------------------------------------------------------------


def render_speech(text: str, sample_rate: int = 44100, bitrate_kbps: int = 128) -> bytes:
    """A quiet voiced burst per word and silence per space: SECONDS_PER_CHARACTER per character,
    so the length of the audio follows the length of the text. MP3 out."""
    shape = tuple((voiced, sum(1 for _ in run))
                  for voiced, run in itertools.groupby(text, key=lambda c: not c.isspace()))
    return _render_shape(shape, sample_rate, bitrate_kbps)


@lru_cache(maxsize=256)
def _render_shape(shape: tuple[tuple[bool, int], ...], sample_rate: int, bitrate_kbps: int) -> bytes:
    per_char = int(round(SECONDS_PER_CHARACTER * sample_rate))
    pcm = np.zeros(per_char * sum(n for _, n in shape), dtype=np.float32)
    rng = np.random.default_rng(len(shape))
    pos = 0
    for voiced, n_chars in shape:
        n = per_char * n_chars
        if voiced:
            pcm[pos:pos + n] = _voiced_burst(n, sample_rate, rng)
        pos += n
    return encode_mp3(pcm, sample_rate, bitrate_kbps)


def _voiced_burst(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(110.0, 180.0) * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))  # a little intonation
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) / 2.3
    # sin() of the last sample can come out at -1e-16; clip before the root.
    envelope = np.sqrt(np.clip(np.sin(np.pi * np.arange(n) / max(n - 1, 1)), 0.0, 1.0))
    breath = rng.normal(0.0, 0.02, n)
    return (0.15 * tone * envelope + breath * envelope).astype(np.float32)


# --- the app --------------------------------------------------------------------------------


def create_app(state: FakeElevenLabs) -> FastAPI:
    logging.getLogger("uvicorn.error").addFilter(_HIDE_DROPPED)
    app = FastAPI(title="Fake ElevenLabs", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = state

    @app.post("/v1/voices/add")
    async def add_voice(request: Request) -> Response:
        return await state.handle("create_voice", request, state.add_voice)

    @app.post("/v1/voices/{voice_id}/edit")
    async def edit_voice(request: Request) -> Response:
        return await state.handle("rename_voice", request, state.edit_voice)

    @app.delete("/v1/voices/{voice_id}")
    async def delete_voice(request: Request) -> Response:
        return await state.handle("delete_voice", request, state.delete_voice)

    @app.get("/v2/voices")
    async def list_voices(request: Request) -> Response:
        return await state.handle("list_voices", request, state.list_voices)

    @app.post("/v1/text-to-speech/{voice_id}")
    async def text_to_speech(request: Request) -> Response:
        return await state.handle("synthesize", request, state.text_to_speech)

    @app.get("/v1/user/subscription")
    async def subscription(request: Request) -> Response:
        return await state.handle("subscription", request, state.subscription)

    _add_control_routes(app, state)
    return app


def _add_control_routes(app: FastAPI, state: FakeElevenLabs) -> None:
    def run(action: Callable[[], Any]) -> Any:
        """Do it; answer {"status": "ok"} (or what it returned), or 400 on a bad argument."""
        try:
            result = action()
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=400)
        return {"status": "ok"} if result is None else result

    @app.get("/_fake/state")
    def fake_state() -> dict[str, Any]:
        return state.snapshot()

    @app.get("/_fake/calls")
    def fake_calls(operation: str | None = None) -> list[dict[str, Any]]:
        return [asdict(c) for c in state.calls if operation is None or c.operation == operation]

    @app.post("/_fake/reset")
    def fake_reset() -> Any:
        return run(state.reset)

    @app.post("/_fake/clear_faults")
    def fake_clear_faults() -> Any:
        return run(state.clear_faults)

    @app.post("/_fake/config")
    def fake_config(payload: dict[str, Any] = Body(default_factory=dict)) -> Any:
        return run(lambda: state.configure(**payload))

    @app.post("/_fake/voices")
    def fake_seed_voice(payload: dict[str, Any] = Body(...)) -> Any:
        return run(lambda: {"voice_id": state.seed_voice(**payload)})

    @app.post("/_fake/latency")
    def fake_latency(payload: dict[str, Any] = Body(...)) -> Any:
        return run(lambda: state.set_latency(float(payload.get("seconds", 0)), payload.get("operation")))

    @app.post("/_fake/fail")
    def fake_fail(payload: dict[str, Any] = Body(...)) -> Any:
        return run(lambda: state.fail_next(payload["operation"], *payload.get("faults", [])))

    @app.post("/_fake/failure_rate")
    def fake_failure_rate(payload: dict[str, Any] = Body(...)) -> Any:
        return run(lambda: state.set_failure_rate(payload["operation"], float(payload.get("probability", 0)),
                                                  payload.get("fault", 503), seed=int(payload.get("seed", 0))))

    @app.post("/_fake/down")
    def fake_down(payload: dict[str, Any] = Body(default_factory=dict)) -> Any:
        return run(lambda: state.set_down(payload.get("mode")))


class FakeElevenLabsControl:
    """Drive a fake running elsewhere (another process) through /_fake/..., same verbs as the
    state object."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self._client.post(f"/_fake/{path}", json=payload or {})
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        response = self._client.get("/_fake/state")
        response.raise_for_status()
        return response.json()

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        response = self._client.get("/_fake/calls", params={"operation": operation} if operation else None)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._post("reset")

    def configure(self, **config: Any) -> None:
        self._post("config", config)

    def seed_voice(self, name: str, *, category: str = "cloned", labels: dict[str, str] | None = None) -> str:
        return self._post("voices", {"name": name, "category": category, "labels": labels or {}})["voice_id"]

    def set_latency(self, seconds: float, operation: str | None = None) -> None:
        self._post("latency", {"seconds": seconds, "operation": operation})

    def fail_next(self, operation: str, *faults: Fault | int | tuple | dict) -> None:
        self._post("fail", {"operation": operation, "faults": [asdict(Fault.coerce(f)) for f in faults]})

    def set_failure_rate(self, operation: str, probability: float, fault: Fault | int | tuple | dict = 503,
                         *, seed: int = 0) -> None:
        self._post("failure_rate", {"operation": operation, "probability": probability,
                                    "fault": asdict(Fault.coerce(fault)), "seed": seed})

    def set_down(self, mode: str | None = "503") -> None:
        self._post("down", {"mode": mode})

    def clear_faults(self) -> None:
        self._post("clear_faults")


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.elevenlabs", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--voice-limit", type=int, default=3)
    parser.add_argument("--character-limit", type=int, default=1_000_000)
    parser.add_argument("--premade-voices", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    state = FakeElevenLabs(args.api_key, voice_limit=args.voice_limit, character_limit=args.character_limit,
                           premade_voices=args.premade_voices, seed=args.seed)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
