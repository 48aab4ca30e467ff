"""Object-level authorization: user B holding user A's ids gets 404 on every resource route,
never A's data, and A's resources are unchanged by B's attempts. Checked for both job reads
(the Redis mirror and the MongoDB fallback after the mirror expired), the SSE stream,
recordings (metadata, audio with and without Range, delete) and the listing; the voice routes
take no id (they are the caller's own), so B sees only B's state there.

(tests/platform/test_jobs.py::test_other_users_job_is_404 and the ownership part of
tests/perform/test_perform.py cover one route each; this is the whole matrix.)"""

from __future__ import annotations

import pytest

from shared.jobs.service import status_key
from tests.conftest import api_client, wait_job
from tests.perform.helpers import perform_ok, user_with_voice


@pytest.fixture(scope="module")
def owner_and_intruder(api_url, db, workers):
    from tests.conftest import UserFactory

    with api_client(api_url, timeout=60) as c:
        users = UserFactory(c, db)
        a, a_headers = user_with_voice(c, users)
        note = perform_ok(c, a_headers, topic="my private diary")
        clone_job = db["jobs"].find_one({"user_id": a["id"], "kind": "clone"})["_id"]
        b, b_headers = users()
    return {"a": a, "a_headers": a_headers, "b": b, "b_headers": b_headers, "note": note,
            "recording_id": note["result"]["recording_id"], "perform_job": note["job_id"], "clone_job": clone_job}


def _routes(ids: dict) -> list[tuple[str, str, dict]]:
    rec, perform_job, clone_job = ids["recording_id"], ids["perform_job"], ids["clone_job"]
    return [
        ("GET", f"/jobs/{perform_job}", {}),
        ("GET", f"/jobs/{clone_job}", {}),
        ("GET", f"/jobs/{perform_job}/events", {}),
        ("GET", f"/recordings/{rec}", {}),
        ("GET", f"/recordings/{rec}/audio", {}),
        ("GET", f"/recordings/{rec}/audio", {"Range": "bytes=0-99"}),
        ("DELETE", f"/recordings/{rec}", {}),
    ]


def _assert_not_leaked(resp, ids) -> None:
    body = resp.content
    for secret in (ids["a"]["id"], ids["note"]["result"]["text"][:40], ids["a"]["username"]):
        assert secret.encode() not in body, (resp.request.url, body[:200])


@pytest.mark.parametrize("mirror", ["redis mirror", "mongodb fallback"])
def test_intruder_gets_404_on_every_resource_route(client, rds, owner_and_intruder, mirror):
    ids = owner_and_intruder
    if mirror == "mongodb fallback":
        for job in (ids["perform_job"], ids["clone_job"]):
            rds.delete(status_key(job))
    for method, path, extra in _routes(ids):
        resp = client.request(method, path, headers={**ids["b_headers"], **extra})
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text[:200])
        assert resp.headers["content-type"].startswith("application/json"), (path, resp.headers)
        assert resp.json()["error"] == "NOT_FOUND"
        _assert_not_leaked(resp, ids)
    # the owner still has everything, unchanged by the attempts
    a = ids["a_headers"]
    assert client.get(f"/jobs/{ids['perform_job']}", headers=a).json()["state"] == "succeeded"
    assert client.get(f"/recordings/{ids['recording_id']}", headers=a).status_code == 200
    audio = client.get(f"/recordings/{ids['recording_id']}/audio", headers=a)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"


def test_intruder_lists_and_sees_only_their_own(client, owner_and_intruder):
    ids = owner_and_intruder
    b = ids["b_headers"]
    listing = client.get("/recordings", headers=b)
    assert listing.status_code == 200 and listing.json()["total"] == 0 and listing.json()["items"] == []
    _assert_not_leaked(listing, ids)
    meta = client.get("/user/voice/meta", headers=b).json()
    assert meta["state"] == "none" and meta["voice_clone_id"] is None and meta["sample"] is None
    for params in ({}, {"original": "true"}):
        source = client.get("/user/voice/source", headers=b, params=params)
        assert source.status_code == 404 and source.json()["error"] == "NOT_FOUND"
    me = client.get("/user/me", headers=b).json()
    assert me["username"] == ids["b"]["username"]
    _assert_not_leaked(client.get("/user/settings", headers=b), ids)


def test_ids_of_the_wrong_shape_or_someone_elses_are_indistinguishable(client, owner_and_intruder):
    """404 for A's id, for an id that never existed and for garbage: nothing to enumerate."""
    ids = owner_and_intruder
    b = ids["b_headers"]
    answers = set()
    for rec in (ids["recording_id"], "0" * 24, "not-an-id", "6" * 25):
        resp = client.get(f"/recordings/{rec}", headers=b)
        answers.add((resp.status_code, resp.json()["error"], resp.json()["message"]))
    assert answers == {(404, "NOT_FOUND", "No such recording.")}, answers
    answers = set()
    for job in (ids["perform_job"], "f" * 32, "x"):
        resp = client.get(f"/jobs/{job}", headers=b)
        answers.add((resp.status_code, resp.json()["error"], resp.json()["message"]))
    assert answers == {(404, "NOT_FOUND", "No such job.")}, answers


def test_admin_routes_refuse_a_plain_user(client, owner_and_intruder):
    b = owner_and_intruder["b_headers"]
    for method, path in (("GET", "/admin/voice-pool/status"), ("POST", "/admin/activation-codes"),
                         ("POST", "/admin/reconcile"), ("POST", "/admin/diagnostics")):
        resp = client.request(method, path, headers=b)
        assert resp.status_code == 403 and resp.json()["error"] == "FORBIDDEN", (path, resp.text)


def test_the_owner_can_still_delete_after_all_that(client, owner_and_intruder):
    ids = owner_and_intruder
    a = ids["a_headers"]
    assert client.delete(f"/recordings/{ids['recording_id']}", headers=a).status_code == 204
    assert client.get(f"/recordings/{ids['recording_id']}", headers=a).status_code == 404
    assert wait_job(client, ids["perform_job"], a)["state"] == "succeeded"
