"""Property-based fuzzing of every endpoint from the API's own OpenAPI schema (schemathesis),
over real HTTP against the served app with real stores and workers: valid and invalid inputs,
with and without a bearer token. No answer may be a 5xx, every status must be one the schema
documents for the operation, and every answer must match the documented content type and body.

Bounded: a handful of examples per operation, no deadline (MongoDB-wire answers vary)."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
#: the SSE stream's body is an event stream, not the JSON a schema can describe
STREAMING = ("/jobs/{job_id}/events",)


@pytest.fixture(scope="module")
def api_schema(api_url, workers):
    # readiness sends canaries to every queue: the session worker must be consuming
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


@pytest.fixture(scope="module")
def token_headers(api_url, db):
    from tests.conftest import UserFactory, api_client

    with api_client(api_url, timeout=30) as c:
        _, headers = UserFactory(c, db)()
    return headers


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def _checks(case) -> list:
    if case.operation.path in STREAMING:
        return [not_a_server_error, status_code_conformance, content_type_conformance]
    return CHECKS


def fuzz_all(schema, base_url: str, headers: dict | None) -> dict[str, int]:
    """Run every operation's generated cases (schemathesis' own pytest plugin does not load
    under this pytest, so hypothesis drives each operation directly); fail with every
    operation that broke, not just the first."""
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):
        label = f"{operation.method.upper()} {operation.path} ({mode.value})"
        calls[label] = 0

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ
        def run(case):
            calls[label] += 1  # noqa: B023 - run() is called within this iteration
            case.call_and_validate(base_url=base_url, headers=headers, checks=_checks(case), timeout=30)

        try:
            run()
        except Unsatisfiable:
            assert mode is schemathesis.GenerationMode.NEGATIVE, label  # nothing to get wrong
        except Exception as exc:  # noqa: BLE001 - collected and reported together below
            failures[label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert len(operations) >= 15 and sum(calls.values()) >= 4 * len(operations), calls
    print(f"\nschema fuzz ({'token' if headers else 'no auth'}): {sum(calls.values())} requests over "
          f"{len(calls)} operations")
    return calls


def test_every_endpoint_without_auth(api_schema, api_url):
    fuzz_all(api_schema, api_url, None)


def test_every_endpoint_with_a_user_token(api_schema, api_url, token_headers):
    fuzz_all(api_schema, api_url, token_headers)
