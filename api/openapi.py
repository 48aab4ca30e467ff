"""The published contract: operation ids, documented errors, streams and files, and the
checked-in copy of the schema (`docs/openapi.json`).

`python -m api.openapi` rewrites docs/openapi.json from the live app; `--check` exits 1 when
it is out of date. Reviewers see every change of the contract as a diff of that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from shared.errors import AppError, ErrorBody

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "docs" / "openapi.json"
REGENERATE = "python -m api.openapi"

ErrorClasses = type[AppError] | Iterable["ErrorClasses"]

_RETRY_AFTER = {"Retry-After": {
    "description": "Seconds to wait before trying again.", "required": True,
    "schema": {"type": "integer", "minimum": 0}}}


def operation_id(route: APIRoute) -> str:
    """`{tag}-{name}` (e.g. `recordings-list`), the convention of
    fastapi/full-stack-fastapi-template, so generated clients get short method names. Untagged
    routes (the docs pages) are not in the schema."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _flatten(errors: Iterable[ErrorClasses]) -> Iterable[type[AppError]]:
    for item in errors:
        if isinstance(item, type):
            yield item
        else:
            yield from _flatten(item)


# Routes that answer something other than JSON declare `response_class=Response` (no media
# type of its own) and document their success content below: FastAPI then files the error
# model under application/json, which is what errors are sent as.


def error_responses(*errors: ErrorClasses) -> dict[int | str, dict[str, Any]]:
    """`responses=` documenting the errors an operation can answer: one entry per status, each
    the one error model, its description listing the codes with their suggested action; a 429
    also documents `Retry-After`. Takes error classes or tuples of them (api/deps.py groups
    what each dependency can raise)."""
    by_status: dict[int, dict[str, str]] = {}
    for cls in _flatten(errors):
        by_status.setdefault(cls.status, {})[cls.code] = cls.default_action
    documented: dict[int | str, dict[str, Any]] = {}
    for status, codes in sorted(by_status.items()):
        lines = "\n".join(f"- `{code}`: {action}" for code, action in sorted(codes.items()))
        entry: dict[str, Any] = {"model": ErrorBody, "description": f"`{{error, message, action}}` with one of:\n\n{lines}"}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        documented[status] = entry
    return documented


BINARY = {"type": "string", "format": "binary"}

JOB_EVENTS = {
    "description": (
        "Server-Sent Events (`text/event-stream`, UTF-8). The stream opens with `retry: 2000` (the "
        "reconnection delay in ms), then sends the job at once and again on every transition:\n\n"
        "```\nid: 3\nevent: job\ndata: {\"job_id\": \"...\", \"state\": \"running\", \"stage\": \"synthesizing\", ...}\n\n```\n\n"
        "- `event` is always `job`; `data` is one line of JSON, the `Job` schema (the same as GET /jobs/{job_id}).\n"
        "- `id` is the job's `seq`: reconnect with `Last-Event-ID` to receive only newer states.\n"
        "- A comment line `: heartbeat` every 15 s keeps proxies from closing a quiet stream.\n"
        "- The server closes the stream after the job reaches `succeeded` or `failed`."),
    "content": {"text/event-stream": {
        "schema": {"type": "string", "description": "An event stream; each event's `data` is a `Job` as JSON."},
        "example": 'retry: 2000\n\nid: 1\nevent: job\ndata: {"job_id": "9f1c", "kind": "perform", "state": "queued"}\n\n',
    }},
    "headers": {"Cache-Control": {"description": "`no-cache`", "schema": {"type": "string"}}},
}

_AUDIO_HEADERS = {
    "Accept-Ranges": {"description": "`bytes`: ranges are supported.", "schema": {"type": "string"}},
    "Content-Length": {"description": "Bytes in this body.", "schema": {"type": "integer"}},
}
RECORDING_AUDIO = {
    200: {"description": "The whole MP3.", "content": {"audio/mpeg": {"schema": BINARY}}, "headers": _AUDIO_HEADERS},
    206: {"description": "The bytes asked for with `Range`.", "content": {"audio/mpeg": {"schema": BINARY}},
          "headers": {**_AUDIO_HEADERS, "Content-Range": {
              "description": "`bytes start-end/size`", "required": True, "schema": {"type": "string"}}}},
    416: {"description": "The range starts past the end of the file; the body is empty.",
          "headers": {"Content-Range": {"description": "`bytes */size`", "required": True,
                                        "schema": {"type": "string"}}}},
}
RANGE_HEADER = {
    "name": "Range", "in": "header", "required": False,
    "description": ("`bytes=start-end`, `bytes=start-` or `bytes=-suffix` for part of the file (206); a "
                    "malformed or multi-range value is ignored and the whole file is sent."),
    "schema": {"type": "string", "maxLength": 100, "examples": ["bytes=0-65535"]},
}
VOICE_SOURCE = {200: {
    "description": "The normalized sample as MP3, or with `original=true` the file as uploaded (its own "
                   "audio type, or `application/octet-stream`).",
    "content": {"audio/mpeg": {"schema": BINARY}, "audio/*": {"schema": BINARY},
                "application/octet-stream": {"schema": BINARY}},
    "headers": {"Content-Disposition": {"description": "`attachment; filename=...`", "schema": {"type": "string"}}},
}}
SESSION_SET_COOKIE = {"Set-Cookie": {
    "description": "`nv_session=<token>; HttpOnly; SameSite=Strict; Path=/` (plus `Secure` in production); "
                   "on logout the same cookie, expired.",
    "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "The job's `status_url`.", "required": True, "schema": {"type": "string"}}}


def document() -> dict[str, Any]:
    """The schema as the API serves it at /openapi.json (it depends on no setting)."""
    from api.main import create_app
    from shared.config import Settings

    return create_app(Settings(_env_file=None, app_env="development")).openapi()


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json is out of date")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        current = SCHEMA_PATH.read_text("utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"docs/openapi.json is out of date; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, "utf-8")
    print(f"wrote {SCHEMA_PATH.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
