"""The published schema itself: current in docs/openapi.json, versioned, every operation named
and typed, one error model for every error, and a conformance check that can fail."""

from __future__ import annotations

import ast
import json
import re

import httpx
import pytest

from api.errors import _HTTP_CODES
from api.openapi import REGENERATE, SCHEMA_PATH, document, render
from shared.errors import ErrorCode
from shared.version import __version__
from tests.conftest import REPO
from tests.contract.conformance import Contract

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return document()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def test_docs_openapi_json_is_the_live_schema(schema):
    assert SCHEMA_PATH.exists(), f"docs/openapi.json is missing; run `{REGENERATE}`"
    checked_in = SCHEMA_PATH.read_text("utf-8")
    assert checked_in == render(schema), (
        f"docs/openapi.json differs from the schema the API serves: run `{REGENERATE}` and commit the "
        "result, so reviewers see the contract change")


def test_the_schema_carries_the_api_version(schema):
    assert schema["info"]["version"] == __version__


def test_operation_ids_are_tag_dash_name(schema):
    ids = [op["operationId"] for _, _, op in operations(schema)]
    assert len(ids) == len(set(ids)), ids
    for path, method, op in operations(schema):
        assert re.fullmatch(r"[a-z]+-[a-z-]+", op["operationId"]), (method, path, op["operationId"])
        assert op["operationId"].startswith(op["tags"][0] + "-"), op["operationId"]
    assert {"perform-create", "jobs-get", "jobs-events", "recordings-list", "recordings-audio",
            "voice-upload", "auth-register", "auth-login", "routines-list"} <= set(ids)


def test_fastapis_validation_error_schema_is_gone(schema):
    names = set(schema["components"]["schemas"])
    assert not names & {"HTTPValidationError", "ValidationError"}, names


def _ref(content: dict) -> str | None:
    return content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1] or None


def test_every_error_is_the_error_model_as_json(schema):
    for path, method, op in operations(schema):
        for status, response in op["responses"].items():
            if int(status) < 400 or status == "416":  # 416: an empty body with Content-Range
                continue
            assert list(response.get("content", {})) == ["application/json"], (method, path, status)
            assert _ref(response["content"]["application/json"]) in {"ErrorBody", "NotReady"}, (method, path, status)


def test_every_success_is_a_named_model_or_a_described_stream(schema):
    for path, method, op in operations(schema):
        for status, response in op["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = response.get("content")
            assert content, (method, path, status, "no content documented")
            if "application/json" in content:
                assert _ref(content["application/json"]), (method, path, status, "not a named model")
            else:
                assert all(c.get("schema") for c in content.values()), (method, path, status)


def test_errors_are_documented_where_they_can_happen(schema):
    for path, method, op in operations(schema):
        statuses = set(op["responses"])
        where = f"{method.upper()} {path}"
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in statuses, f"{where} takes input but documents no 422"
        if op.get("security"):
            assert "401" in statuses, f"{where} needs a token but documents no 401"
        if "429" in statuses:
            assert op["responses"]["429"]["headers"]["Retry-After"]["required"], where
    admin = [op for path, _, op in operations(schema) if path.startswith("/admin/")]
    assert admin and all("403" in op["responses"] for op in admin)


def _codes_in_source() -> set[str]:
    """Every error code the code base declares: `code = "..."` in a class body (an AppError
    subclass, wherever it lives, workers included) and `error("CODE", ...)` in the catalogue.
    Read from the source, so no module has to be imported (a worker module connects signals)."""
    codes = set()
    for package in ("shared", "api", "workers"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if (isinstance(item, ast.Assign) and any(getattr(t, "id", None) == "code" for t in item.targets)
                                and isinstance(item.value, ast.Constant)):
                            codes.add(item.value.value)
                elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "error" and node.args
                      and isinstance(node.args[0], ast.Constant)):
                    codes.add(node.args[0].value)
    return codes


def test_the_error_enum_lists_every_code_the_api_or_a_job_can_send(schema):
    declared = _codes_in_source()
    assert {"VALIDATION_ERROR", "JOB_LOST", "JOB_TIMEOUT", "VOICE_NOT_FOUND", "INTERNAL_ERROR"} <= declared
    sent = declared | {code for code, _ in _HTTP_CODES.values()} | {"HTTP_ERROR"}  # api/errors.py
    assert sent <= {c.value for c in ErrorCode}, sent - {c.value for c in ErrorCode}
    assert schema["components"]["schemas"]["ErrorCode"]["enum"] == [c.value for c in ErrorCode]


# ------------------------------------------------------------------ the conformance check


def _answer(method: str, path: str, status: int, body=None, **headers) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    if body is not None:
        headers.setdefault("content-type", "application/json")
    return httpx.Response(status, headers=headers, content=content,
                          request=httpx.Request(method, f"http://api{path}"))


def _problems(schema: dict, response: httpx.Response) -> list[str]:
    contract = Contract(schema)
    contract.check(response)
    return [v.problem for v in contract.violations]


def test_the_conformance_check_fails_what_the_old_schema_let_through(schema):
    # FastAPI's `detail` list, which the old schema documented for 422 and the API never sent
    assert _problems(schema, _answer("POST", "/perform", 422, {"detail": [{"loc": ["body"], "msg": "x"}]}))
    # an error code outside the catalogue
    assert _problems(schema, _answer("GET", "/jobs/abc", 404, {"error": "GONE", "message": "m", "action": "a"}))
    # a status the operation does not document
    assert _problems(schema, _answer("GET", "/health", 418, {"error": "NOT_FOUND", "message": "m", "action": "a"}))
    # a field beyond the contract: a leak
    health = {"status": "ok", "version": "1", "env": "test", "providers": {"voice": "local", "text": "local"},
              "voice_model": "m", "elevenlabs_model": "m", "model_cost_factor": 1.0, "text_model": "t"}
    assert not _problems(schema, _answer("GET", "/health", 200, health))
    assert _problems(schema, _answer("GET", "/health", 200, {**health, "secret": "x"}))
    # 429 without Retry-After; 202 without Location; an MP3 route answering JSON
    limited = {"error": "RATE_LIMITED", "message": "m", "action": "a"}
    assert _problems(schema, _answer("POST", "/perform", 429, limited))
    assert not _problems(schema, _answer("POST", "/perform", 429, limited, **{"retry-after": "3"}))
    assert _problems(schema, _answer("GET", "/recordings/x/audio", 200, {"not": "audio"}))
