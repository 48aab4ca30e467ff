"""Every answer the suite receives from the API, held against the published schema.

The shared httpx clients (tests/conftest.py `api_client`) run `Contract.check` as a response
event hook: the status must be documented for the operation, the content type must be one it
documents, a JSON body must validate against the documented schema (errors included) and
documented required headers must be there. A violation is recorded, and the root conftest's
autouse fixture fails the test that received it, even when the request ran in a thread the test
does not watch.

Bodies that stream (SSE, MP3) are not read here, so following a stream stays live; read_sse
checks each event's `data` against the `Job` schema instead."""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema_rs

#: media types whose bodies are not read by the hook (streams and files)
_UNREAD = ("text/event-stream", "audio/", "application/octet-stream")


@dataclass
class Violation:
    request: str
    problem: str

    def __str__(self) -> str:
        return f"{self.request}: {self.problem}"


@dataclass
class Contract:
    schema: dict[str, Any]
    violations: list[Violation] = field(default_factory=list)
    checked: int = 0

    def __post_init__(self) -> None:
        self.schema = _closed(self.schema)
        self._lock = threading.Lock()
        self._validators: dict[str, jsonschema_rs.Validator] = {}  # costly to build: one per schema
        # most specific first: /recordings/{id}/audio before /recordings/{id}
        self._paths = sorted(((re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", p) + "$"), p)
                              for p in self.schema["paths"]), key=lambda item: -item[1].count("/"))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for pattern, template in self._paths:
            if pattern.match(path):
                op = self.schema["paths"][template].get(method.lower())
                return (template, op) if op is not None else None
        return None

    def validator(self, pointer: str) -> jsonschema_rs.Validator:
        """A validator for the schema at a JSON pointer into the document ("/paths/..."),
        resolving `#/components/...` references against the whole document."""
        found = self._validators.get(pointer)
        if found is None:
            found = self._validators[pointer] = jsonschema_rs.Draft202012Validator(
                {"$ref": "#" + quote(pointer, safe="/~"), **self.schema}, validate_formats=True)
        return found

    def problems(self, method: str, path: str, status: int, headers: httpx.Headers,
                 body: bytes | None) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            # not an operation (the docs pages, an unknown URL, a method the path lacks):
            # whatever errors it gets are still `{error, message, action}`
            if status >= 400 and body is not None:
                return self._json_problems("/components/schemas/ErrorBody", body)
            return []
        template, op = found
        key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in op["responses"]), None)
        if key is None:
            return [f"status {status} is not documented for {method} {template} "
                    f"(documented: {', '.join(sorted(op['responses']))})"]
        documented = op["responses"][key]
        base = f"/paths/{_escape(template)}/{method.lower()}/responses/{key}"
        problems = [f"required header {name} is missing" for name, spec in documented.get("headers", {}).items()
                    if spec.get("required") and name not in headers]
        content = documented.get("content") or {}
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if not content:
            if body:
                problems.append(f"documented without a body, but {len(body)} bytes of {media or '?'} were sent")
            return problems
        match = next((m for m in content if _media_matches(m, media)), None)
        if match is None:
            return problems + [f"content type {media or '(none)'} is not documented ({', '.join(content)})"]
        if body is not None and match == "application/json" and "schema" in content[match]:
            problems += self._json_problems(f"{base}/content/{_escape(match)}/schema", body)
        return problems

    def _json_problems(self, pointer: str, body: bytes) -> list[str]:
        try:
            instance = json.loads(body)
        except ValueError:
            return [f"body is not JSON: {body[:200]!r}"]
        errors = list(self.validator(pointer).iter_errors(instance))
        return [f"body does not match {pointer.rsplit('/schemas/', 1)[-1] if '/schemas/' in pointer else 'its schema'}: "
                f"at /{'/'.join(map(str, e.instance_path))}: {e.message}" for e in errors[:5]] + (
                    [f"... and {len(errors) - 5} more"] if len(errors) > 5 else [])

    def check(self, response: httpx.Response) -> None:
        """The httpx response hook."""
        request = response.request
        media = response.headers.get("content-type", "")
        body = None
        if not media.startswith(_UNREAD):
            body = response.read()
        problems = self.problems(request.method, request.url.path, response.status_code, response.headers, body)
        with self._lock:
            self.checked += 1
            self.violations += [Violation(f"{request.method} {request.url.path} -> {response.status_code}", p)
                                for p in problems]

    def check_event(self, data: str) -> None:
        """One SSE event's `data`: the `Job` schema."""
        problems = self._json_problems("/components/schemas/Job", data.encode())
        with self._lock:
            self.violations += [Violation("SSE event data", p) for p in problems]


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every named model closed to fields it does not declare
    (`additionalProperties: false` where the model says nothing): the API sends its models
    and nothing more, so an extra field in a body is a leak the suite must see. Free-form
    objects say `additionalProperties: true` and stay open."""
    closed = copy.deepcopy(schema)
    for model in closed.get("components", {}).get("schemas", {}).values():
        if "properties" in model and "additionalProperties" not in model:
            model["additionalProperties"] = False
    return closed


def _escape(segment: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def _media_matches(documented: str, sent: str) -> bool:
    if documented.endswith("/*"):
        return sent.startswith(documented[:-1])
    return documented == sent


@functools.cache
def contract() -> Contract:
    """The schema the API publishes, loaded once per session on first use."""
    from api.openapi import document

    return Contract(document())
