"""A fake Gemini API (generativelanguage.googleapis.com) for tests and local runs.

It speaks the REST shape the google-genai SDK uses, checked by running SDK 3.4 against it:
`POST /{v1|v1beta}/models/{model}:generateContent` (the SDK defaults to v1 since 3.x; v1beta
is what older SDKs and most docs use), key in the `x-goog-api-key` header, camelCase JSON
(`contents`, `systemInstruction`, `safetySettings`, `generationConfig`), answers with
`candidates[].content.parts[].text`, `finishReason`, `usageMetadata`, `modelVersion`.
Errors use Google's body: `{"error": {"code", "message", "status", "details"?}}`. As the
real service does, a wrong key gets 400 INVALID_ARGUMENT with reason API_KEY_INVALID and a
missing key gets 403 PERMISSION_DENIED.

Behaviour switches, from Python (`fake.fail_next(2, 503)`) or over HTTP (`POST /_fake/...`):
reply text or reply function, latency, failures for the next N calls (400/401/403/404/429/
500/503), and special answers for the next N calls: blocked prompt, SAFETY / RECITATION
finish without text, empty text, markup-laden text, MAX_TOKENS, a non-JSON 200 (a proxy's
login page). Every generateContent
request is recorded (`fake.requests`), failed ones included.

Standalone: python -m tests.fakes.gemini --port 8089 --api-key test-key
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

DEFAULT_API_KEY = "fake-gemini-key"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). "
                               "Please use API Key or other form of API consumer identity to call this API."),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}

ANSWER_KINDS = ("blocked_prompt", "safety", "recitation", "empty", "markup", "max_tokens", "garbage")

MARKUP_REPLY = (
    "## Your Morning Boost 🌞\n\n"
    "* **Breathe in** deeply and feel the energy.\n"
    "* Remember: you've got this!\n\n"
    "<speak>Take a moment <break time=\"1s\"/> and smile.</speak>\n\n"
    "Learn more at https://example.com/motivation #motivation"
)

_EN_SENTENCES = [
    "Good morning, it's me, and I'm taking a quiet moment before the day begins.",
    "I notice how I feel right now, and I let it be exactly what it is.",
    "I have handled hard things before, and I can handle what today brings.",
    "I choose one small step, and I take it with care and attention.",
    "My breath is slow and steady, and my mind is getting clearer.",
    "I don't need to be perfect today, I only need to show up as myself.",
    "I'm proud of the effort I keep making, even when nobody sees it.",
    "Whatever happens, I will be kind to myself along the way.",
    "There is room in this day for progress and for rest.",
    "I trust myself, and I'm ready for what comes next.",
]
_ES_SENTENCES = [
    "Hola, soy yo, y me regalo un momento de calma antes de empezar el día.",
    "Noto cómo me siento ahora mismo, y dejo que sea tal como es.",
    "Ya he superado cosas difíciles, y puedo con lo que traiga este día.",
    "Elijo un paso pequeño, y lo doy con cuidado y atención.",
    "Mi respiración es lenta y tranquila, y mi mente se aclara poco a poco.",
    "Hoy no necesito ser perfecto, solo necesito presentarme tal como soy.",
    "Me siento orgulloso del esfuerzo que hago cada día, aunque nadie lo vea.",
    "Pase lo que pase, voy a ser amable conmigo por el camino.",
    "En este día hay espacio para avanzar y también para descansar.",
    "Confío en mí, y estoy listo para lo que venga.",
]


def request_language(body: dict[str, Any]) -> str:
    """'spanish' when the system instruction asks for Spanish, else 'english'."""
    system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
    return "spanish" if re.search(r"\bspanish\b|\bespañol\b", system, re.IGNORECASE) else "english"


def request_word_range(body: dict[str, Any]) -> tuple[int, int]:
    system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
    m = re.search(r"between (\d+) and (\d+) words", system)
    return (int(m.group(1)), int(m.group(2))) if m else (60, 110)


def default_reply(body: dict[str, Any]) -> str:
    """A plausible voice note in the language asked for, sized to the middle of the word range.
    It never quotes the topic, like a well-behaved model."""
    sentences = _ES_SENTENCES if request_language(body) == "spanish" else _EN_SENTENCES
    lo, hi = request_word_range(body)
    target = (lo + hi) // 2
    out: list[str] = []
    for sentence in sentences:
        if sum(len(s.split()) for s in out) >= target:
            break
        out.append(sentence)
    return " ".join(out)


def user_text(body: dict[str, Any]) -> str:
    return "\n".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))


@dataclass
class RecordedRequest:
    api_version: str
    model: str
    headers: dict[str, str]  # the API key is redacted
    body: dict[str, Any]
    status: int = 0  # what the fake answered

    @property
    def user_text(self) -> str:
        return user_text(self.body)

    @property
    def system_text(self) -> str:
        return system_text(self.body)


@dataclass
class _State:
    reply_text: str | None = None
    reply_fn: Callable[[dict[str, Any]], str] | None = None
    latency_s: float = 0.0
    failures: deque[int] = field(default_factory=deque)
    answers: deque[str] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)


class FakeGemini:
    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._state = _State()
        self.app = self._build_app()

    # ------------------------------------------------------------ Python controls

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    def reply_with(self, text: str | None = None, fn: Callable[[dict[str, Any]], str] | None = None) -> None:
        """Fixed reply text, or a function of the request body; neither = the default reply."""
        with self._lock:
            self._state.reply_text, self._state.reply_fn = text, fn

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._state.latency_s = seconds

    def fail_next(self, count: int, status: int = 503) -> None:
        if status not in _ERRORS:
            raise ValueError(f"unsupported failure status {status}")
        with self._lock:
            self._state.failures.extend([status] * count)

    def answer_next(self, count: int, kind: str) -> None:
        if kind not in ANSWER_KINDS:
            raise ValueError(f"kind must be one of {ANSWER_KINDS}")
        with self._lock:
            self._state.answers.extend([kind] * count)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self._state.requests)

    # ------------------------------------------------------------ responses

    @staticmethod
    def error_body(code: int, message: str | None = None, details: list[dict[str, Any]] | None = None) -> dict:
        status, default_message = _ERRORS.get(code, ("UNKNOWN", "Unknown error."))
        error: dict[str, Any] = {"code": code, "message": message or default_message, "status": status}
        if details:
            error["details"] = details
        return {"error": error}

    def _error(self, code: int, message: str | None = None, details: list[dict[str, Any]] | None = None):
        if code == 429 and details is None:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        return JSONResponse(self.error_body(code, message, details), status_code=code)

    @staticmethod
    def _usage(prompt_chars: int, output_chars: int) -> dict[str, int]:
        p, o = max(1, prompt_chars // 4), output_chars // 4
        return {"promptTokenCount": p, "candidatesTokenCount": o, "totalTokenCount": p + o}

    def _answer(self, kind: str | None, body: dict[str, Any], model: str,
                reply: tuple[str | None, Callable[[dict[str, Any]], str] | None]) -> dict[str, Any]:
        prompt_chars = len(user_text(body)) + len(system_text(body))
        base = {"modelVersion": model, "responseId": uuid.uuid4().hex[:22]}
        ratings_blocked = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
        if kind == "blocked_prompt":
            return {**base, "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings_blocked},
                    "usageMetadata": {"promptTokenCount": prompt_chars // 4, "totalTokenCount": prompt_chars // 4}}
        if kind in ("safety", "recitation"):
            candidate = {"finishReason": kind.upper(), "index": 0}
            if kind == "safety":
                candidate["safetyRatings"] = ratings_blocked
            return {**base, "candidates": [candidate], "usageMetadata": self._usage(prompt_chars, 0)}
        reply_text, reply_fn = reply
        if kind == "empty":
            text = ""
        elif kind == "markup":
            text = MARKUP_REPLY
        elif reply_fn is not None:
            text = reply_fn(body)
        elif reply_text is not None:
            text = reply_text
        else:
            text = default_reply(body)
        finish = "STOP"
        if kind == "max_tokens":
            text, finish = " ".join(text.split()[: max(3, len(text.split()) // 3)]), "MAX_TOKENS"
        return {**base, "candidates": [{
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": finish,
            "index": 0,
        }], "usageMetadata": self._usage(prompt_chars, len(text))}

    def _request_error(self, key: str | None, body: dict[str, Any], model: str,
                       api_version: str) -> tuple[int, str | None, list[dict[str, Any]] | None] | None:
        """Auth and request-shape errors, in the order the real service reports them."""
        if not key:
            return 403, None, None
        if key != self.api_key:
            return 400, "API key not valid. Please pass a valid API key.", [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"},
            }]
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents or not all(
            isinstance(c, dict) and isinstance(c.get("parts"), list) for c in contents
        ):
            return 400, "* GenerateContentRequest.contents: contents is not specified", None
        if not model.startswith("gemini-"):
            return 404, (f"models/{model} is not found for API version {api_version}, "
                         "or is not supported for generateContent."), None
        return None

    # ------------------------------------------------------------ app

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="fake-gemini")

        @app.post("/{api_version}/models/{model_action}")
        async def generate_content(api_version: str, model_action: str, request: Request):
            model, _, action = model_action.partition(":")
            if api_version not in ("v1", "v1beta") or action != "generateContent":
                return self._error(404, f"Method {model_action} not found for API version {api_version}.")
            raw = await request.body()
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_unparseable": raw.decode("utf-8", "replace")}
            headers = {k: ("<redacted>" if k == "x-goog-api-key" else v) for k, v in request.headers.items()}
            record = RecordedRequest(api_version, model, headers, body)
            key = request.headers.get("x-goog-api-key")
            # Everything is decided on arrival, against the state of that moment: a request
            # still sleeping in `latency` when a test ends must not consume the next test's
            # scripted failures or answers after a reset.
            with self._lock:
                state = self._state
                state.requests.append(record)
                latency = state.latency_s
                error = self._request_error(key, body, model, api_version)
                if error is None and state.failures:
                    error = (state.failures.popleft(), None, None)
                kind = state.answers.popleft() if error is None and state.answers else None
                reply = (state.reply_text, state.reply_fn)
            if latency:
                await asyncio.sleep(latency)
            if error is not None:
                record.status = error[0]
                return self._error(*error)
            record.status = 200
            if kind == "garbage":
                return HTMLResponse("<html><body>Sign in to continue to the network</body></html>")
            return JSONResponse(self._answer(kind, body, model, reply))

        # -- test controls over HTTP (for a fake running in another process)

        @app.post("/_fake/reset")
        async def _reset():
            self.reset()
            return {"ok": True}

        @app.post("/_fake/reply")
        async def _reply(request: Request):
            data = await request.json()
            self.reply_with(text=data.get("text"))
            return {"ok": True}

        @app.post("/_fake/latency")
        async def _latency(request: Request):
            self.set_latency(float((await request.json())["seconds"]))
            return {"ok": True}

        @app.post("/_fake/fail")
        async def _fail(request: Request):
            data = await request.json()
            self.fail_next(int(data.get("count", 1)), int(data.get("status", 503)))
            return {"ok": True}

        @app.post("/_fake/answer")
        async def _answer(request: Request):
            data = await request.json()
            self.answer_next(int(data.get("count", 1)), str(data["kind"]))
            return {"ok": True}

        @app.get("/_fake/requests")
        async def _requests():
            return [{"api_version": r.api_version, "model": r.model, "status": r.status, "body": r.body}
                    for r in self.requests]

        return app


@contextlib.contextmanager
def running_fake_gemini(api_key: str = DEFAULT_API_KEY) -> Iterator[tuple[FakeGemini, str]]:
    """(fake, base_url) served on a free loopback port for the duration of the block."""
    from tests.fakes.server import serve

    fake = FakeGemini(api_key)
    with serve(fake.app) as base_url:
        yield fake, base_url


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Fake Gemini generateContent server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    uvicorn.run(FakeGemini(args.api_key).app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
