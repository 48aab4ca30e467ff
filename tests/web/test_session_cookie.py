"""The web app's session at HTTP level: the cookie from POST /auth/session authenticates what a
bearer token does (the upload that reads its own multipart body, the SSE stream included),
cookie-authenticated writes from another site are refused, and logging out ends the session."""

from __future__ import annotations

import json

import pytest

from shared.errors import CrossSiteRequest
from tests.conftest import SAMPLE, api_client

OTHER_SITE = "https://evil.example"


@pytest.fixture()
def browser_client(api_url):
    """A client that keeps cookies, as the browser does for the page served at /."""
    with api_client(api_url, timeout=60) as c:
        yield c


def log_in(c, new_user, **headers) -> dict:
    user = new_user.register()
    resp = c.post("/auth/session", json={"username": user["username"], "password": user["password"]},
                  headers=headers)
    assert resp.status_code == 200, resp.text
    return user


def set_cookie_headers(resp) -> dict[str, str]:
    return {line.split("=", 1)[0]: line for line in resp.headers.get_list("set-cookie")}


def assert_cross_site_refused(resp) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json() == {"error": CrossSiteRequest.code, "message": resp.json()["message"],
                           "action": CrossSiteRequest.default_action}


def test_session_login_sets_an_http_only_strict_cookie_that_authenticates(browser_client, new_user, api_url):
    user = new_user.register()
    resp = browser_client.post("/auth/session", json={"username": user["username"], "password": user["password"]},
                               headers={"Origin": api_url, "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["expires_in"] > 0
    assert "access_token" not in resp.json()  # the page never holds the token
    cookies = set_cookie_headers(resp)
    session = cookies["nv_session"].lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    assert "secure" not in session  # not in production: the dev server is plain http
    assert "httponly" in cookies["nv_device"].lower()
    me = browser_client.get("/user/me")
    assert me.status_code == 200 and me.json()["username"] == user["username"]


def test_the_session_cookie_is_secure_in_production(base_env, db):
    from api.main import create_app
    from tests.conftest import UserFactory, make_settings
    from tests.fakes.server import serve

    prod = make_settings(base_env, app_env="production", jwt_secret="p" * 48, metrics_token="m" * 24,
                         public_base_url="https://app.example.com")
    with serve(create_app(prod)) as url, api_client(url, timeout=30) as c:
        user = UserFactory(c, db).register()
        resp = c.post("/auth/session", json={"username": user["username"], "password": user["password"]},
                      headers={"Origin": "https://app.example.com"})
        assert resp.status_code == 200, resp.text
        assert "secure" in set_cookie_headers(resp)["nv_session"].lower()
        # behind the TLS proxy the origin is PUBLIC_BASE_URL's, not the forwarded Host
        assert c.post("/auth/session", json={"username": user["username"], "password": user["password"]},
                      headers={"Origin": url}).status_code == 403


def test_the_device_cookie_is_sent_back_and_not_reissued(browser_client, new_user):
    user = log_in(browser_client, new_user)
    again = browser_client.post("/auth/session", json={"username": user["username"], "password": user["password"]})
    assert again.status_code == 200
    assert "nv_device" not in set_cookie_headers(again)  # the login guard knew this browser


@pytest.mark.parametrize("headers", [{"Origin": OTHER_SITE}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}])
def test_cookie_writes_from_another_site_are_refused(browser_client, new_user, headers):
    log_in(browser_client, new_user)
    resp = browser_client.put("/user/settings", json={"language": "spanish"}, headers=headers)
    assert_cross_site_refused(resp)
    assert browser_client.get("/user/settings").json()["language"] == "english"
    # reads stay allowed: another site cannot read the answer anyway (no CORS credentials)
    assert browser_client.get("/user/settings", headers=headers).status_code == 200


def test_cookie_writes_from_our_own_page_pass(browser_client, new_user, api_url):
    log_in(browser_client, new_user)
    resp = browser_client.put("/user/settings", json={"language": "spanish"},
                              headers={"Origin": api_url, "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["language"] == "spanish"


def test_a_bearer_token_is_not_held_to_the_origin_check(client, new_user):
    _, auth = new_user()
    resp = client.put("/user/settings", json={"language": "spanish"}, headers={**auth, "Origin": OTHER_SITE})
    assert resp.status_code == 200, resp.text


def test_a_session_login_from_another_site_is_refused(browser_client, new_user):
    user = new_user.register()
    resp = browser_client.post("/auth/session", json={"username": user["username"], "password": user["password"]},
                               headers={"Origin": OTHER_SITE})
    assert_cross_site_refused(resp)
    assert "set-cookie" not in resp.headers


def test_logging_out_clears_the_cookie_and_ends_the_session(browser_client, new_user):
    log_in(browser_client, new_user)
    assert browser_client.delete("/auth/session", headers={"Origin": OTHER_SITE}).status_code == 403
    assert browser_client.get("/user/me").status_code == 200
    resp = browser_client.delete("/auth/session")
    assert resp.status_code == 204
    assert "max-age=0" in set_cookie_headers(resp)["nv_session"].lower()
    me = browser_client.get("/user/me")
    assert me.status_code == 401 and me.json()["error"] == "AUTH_REQUIRED"
    assert browser_client.delete("/auth/session").status_code == 204  # twice is fine


def test_an_expired_session_cookie_answers_token_expired(browser_client, new_user, settings):
    import time

    import jwt

    log_in(browser_client, new_user)
    claims = jwt.decode(browser_client.cookies["nv_session"], options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    browser_client.cookies.set("nv_session", jwt.encode(claims, settings.jwt_secret.get_secret_value(),
                                                        algorithm=settings.jwt_algorithm))
    resp = browser_client.get("/user/me")
    assert resp.status_code == 401 and resp.json()["error"] == "TOKEN_EXPIRED"


def test_upload_and_its_event_stream_work_with_the_cookie(browser_client, new_user, api_url, workers):
    log_in(browser_client, new_user)
    refused = browser_client.post("/user/voice", files={"file": ("s.mp3", SAMPLE.read_bytes(), "audio/mpeg")},
                                  headers={"Origin": OTHER_SITE})
    assert_cross_site_refused(refused)
    resp = browser_client.post("/user/voice", files={"file": ("s.mp3", SAMPLE.read_bytes(), "audio/mpeg")},
                               headers={"Origin": api_url, "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    events = []
    with browser_client.stream("GET", f"/jobs/{job_id}/events", timeout=120) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["state"] == "succeeded", events[-1]
    assert browser_client.get("/user/voice/meta").json()["state"] == "ready"


def test_without_bearer_or_cookie_the_answer_names_both(client):
    resp = client.get("/user/me")
    assert resp.status_code == 401
    assert "session" in resp.json()["message"]
