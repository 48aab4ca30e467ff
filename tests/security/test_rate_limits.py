"""Rate limits over real HTTP against the session Redis: each limit answers 429 with
Retry-After, and lets requests through again once that time has passed.

The app under test shares the session's Redis, MongoDB and worker but has small limits and
trusts 127.0.0.1 as a proxy, so X-Forwarded-For stands in for clients at other addresses.
Users are created through the session stack, whose limits are roomy."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from bson import ObjectId
from starlette.requests import Request

from api.main import create_app
from api.security import client_ip
from shared import ratelimit
from shared.errors import RateLimited
from tests import samples
from tests.conftest import api_client, make_settings, wait_job
from tests.fakes.server import free_port, serve

COOLDOWN_S = 3
LIMITS = {"rate_limit_perform": "2/2s", "rate_limit_upload": "2/2s", "upload_cooldown_s": COOLDOWN_S,
          "rate_limit_login_ip": "3/2s", "rate_limit_login_user": "3/3s", "rate_limit_login_account": "6/10s",
          "rate_limit_register_ip": "2/2s",
          "trusted_proxies": "127.0.0.1"}


@pytest.fixture(scope="module")
def limited(base_env, db):
    with serve(create_app(make_settings(base_env, **LIMITS))) as url, \
            api_client(url, timeout=60) as c:
        yield c


def fresh_ip() -> str:
    """An address from the IPv6 documentation range no other test uses."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def assert_limited(resp: httpx.Response, at_most_s: int) -> int:
    """A 429 as a client sees it; returns the Retry-After to wait."""
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["error"] == "RATE_LIMITED" and body["message"] and body["action"]
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= at_most_s
    return retry_after


def perform(c: httpx.Client, headers: dict) -> httpx.Response:
    return c.post("/perform", headers=headers, json={"routine_type": "morning_motivation", "topic": "a run"})


def upload(c: httpx.Client, headers: dict, data: bytes) -> httpx.Response:
    return c.post("/user/voice", headers=headers, files={"file": ("sample.mp3", data, "audio/mpeg")})


def login(c: httpx.Client, username: str, password: str, ip: str, device: str | None = None) -> httpx.Response:
    return c.post("/auth/login", json={"username": username, "password": password},
                  headers={"X-Forwarded-For": ip, **({"X-Device-Token": device} if device else {})})


# ------------------------------------------------------------------ per user


def test_performs_are_limited_per_user(limited, new_user):
    _, alice = new_user()
    _, bob = new_user()
    # the users have no voice yet (409), which keeps the worker out of it; refusals count too
    assert [perform(limited, alice).status_code for _ in range(2)] == [409, 409]
    wait = assert_limited(perform(limited, alice), 2)
    assert perform(limited, bob).status_code == 409  # another user is not held back
    time.sleep(wait)
    assert perform(limited, alice).status_code == 409


def test_uploads_are_limited_per_user(limited, new_user):
    _, headers = new_user()
    assert [upload(limited, headers, samples.text_file()).status_code for _ in range(2)] == [422, 422]
    wait = assert_limited(upload(limited, headers, samples.text_file()), 2)
    time.sleep(wait)
    assert upload(limited, headers, samples.text_file()).json()["error"] == "SAMPLE_UNSUPPORTED"


def test_no_new_sample_right_after_a_successful_clone(limited, new_user, workers):
    _, headers = new_user()
    resp = upload(limited, headers, samples.original())
    assert resp.status_code == 202, resp.text
    job = wait_job(limited, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "succeeded", job["error"]

    refused = upload(limited, headers, samples.original())
    wait = assert_limited(refused, COOLDOWN_S)
    assert "just updated" in refused.json()["message"]
    time.sleep(wait)
    assert upload(limited, headers, samples.text_file()).json()["error"] == "SAMPLE_UNSUPPORTED"


def test_a_failed_clone_starts_no_cooldown(limited, new_user, workers):
    _, headers = new_user()
    resp = upload(limited, headers, samples.cut(10))  # too short: the worker refuses it
    assert resp.status_code == 202, resp.text
    assert wait_job(limited, resp.json()["job_id"], headers, timeout_s=180)["state"] == "failed"
    assert upload(limited, headers, samples.text_file()).json()["error"] == "SAMPLE_UNSUPPORTED"


def test_the_cooldown_length_is_decided_where_it_is_enforced(rds, settings):
    # The worker only marks the moment; each reader applies its own cooldown to it.
    user_id = str(ObjectId())
    ratelimit.record_clone_success(rds, user_id)
    with pytest.raises(RateLimited) as info:
        ratelimit.check_upload(rds, settings.model_copy(update={"upload_cooldown_s": 30}), user_id)
    assert 29 <= int(info.value.headers["Retry-After"]) <= 30
    ratelimit.check_upload(rds, settings, user_id)  # the session stack has no cooldown


# ------------------------------------------------------------------ login and registration


def test_an_attacker_cannot_lock_the_owner_out(limited, new_user):
    """Wrong passwords hold back the client that sends them, not the owner's own client (its
    device token), nor the owner on another address."""
    user = new_user.register()
    first = login(limited, user["username"], user["password"], fresh_ip())
    assert first.status_code == 200 and first.json()["device_token"]
    device = first.json()["device_token"]
    attacker = fresh_ip()
    for _ in range(3):
        assert login(limited, user["username"], "wrong password", attacker).status_code == 401
    assert_limited(login(limited, user["username"], user["password"], attacker), 3)  # not even checked
    # the owner, from the attacker's very address (one NAT), with the client that logged in before
    again = login(limited, user["username"], user["password"], attacker, device)
    assert again.status_code == 200 and again.json()["device_token"] is None
    # and from an address of its own, with a new client
    assert login(limited, user["username"], user["password"], fresh_ip()).status_code == 200


def test_failures_back_off_doubling_and_both_spellings_count_for_one_account(limited, new_user):
    user = new_user.register()
    ip = fresh_ip()
    assert login(limited, user["username"], "wrong password", ip).status_code == 401
    assert login(limited, user["email"].upper(), "wrong password", ip).status_code == 401
    assert login(limited, user["username"].upper(), "wrong password", ip).status_code == 401
    wait = assert_limited(login(limited, user["email"], user["password"], ip), 3)
    time.sleep(wait)
    assert login(limited, user["username"], "wrong password", ip).status_code == 401
    # a failure after the wait doubles the next one
    assert 3 < assert_limited(login(limited, user["username"], user["password"], ip), 6) <= 6


def test_guessing_spread_over_addresses_stops_at_the_account_limit_not_for_the_owner(limited, new_user):
    user = new_user.register()
    device = login(limited, user["username"], user["password"], fresh_ip()).json()["device_token"]
    codes = [login(limited, user["username"], "wrong password", fresh_ip()).status_code for _ in range(6)]
    assert codes == [401] * 6
    assert_limited(login(limited, user["username"], user["password"], fresh_ip()), 10)
    assert login(limited, user["username"], user["password"], fresh_ip(), device).status_code == 200


def test_a_successful_login_forgives_earlier_failures(limited, new_user):
    user = new_user.register()
    ip = fresh_ip()
    assert [login(limited, user["username"], "wrong password", ip).status_code
            for _ in range(2)] == [401, 401]
    assert login(limited, user["username"], user["password"], ip).status_code == 200
    # four failures from this client and five attempts from its address within the windows
    # (3 per 3 s per client, 3 per 2 s per address), but only two since the success
    assert [login(limited, user["username"], "wrong password", ip).status_code
            for _ in range(2)] == [401, 401]


def test_unknown_accounts_are_limited_like_real_ones(limited):
    # otherwise the 429 would tell which usernames exist
    name = f"nobody_{uuid.uuid4().hex[:8]}"
    ip = fresh_ip()
    assert [login(limited, name, "wrong password", ip).status_code for _ in range(3)] == [401] * 3
    assert_limited(login(limited, name, "wrong password", ip), 3)


def test_login_attempts_are_limited_per_address(limited):
    ip = fresh_ip()
    names = [f"nobody_{uuid.uuid4().hex[:8]}" for _ in range(5)]
    assert [login(limited, n, "wrong password", ip).status_code for n in names[:3]] == [401] * 3
    wait = assert_limited(login(limited, names[3], "wrong password", ip), 2)
    # a forged entry in front of what our proxy appended changes nothing
    assert login(limited, names[3], "wrong password", f"{fresh_ip()}, {ip}").status_code == 429
    assert login(limited, names[3], "wrong password", fresh_ip()).status_code == 401
    time.sleep(wait)
    assert login(limited, names[4], "wrong password", ip).status_code == 401


def test_registrations_are_limited_per_address(limited):
    ip = fresh_ip()

    def register():
        name = f"r{uuid.uuid4().hex[:10]}"
        return limited.post("/auth/register", headers={"X-Forwarded-For": ip}, json={
            "username": name, "email": f"{name}@example.com", "password": "password123",
            "activation_code": "NV-NOPE-NOPE-NOPE"})

    # guessing activation codes is what this slows down
    assert [register().json()["error"] for _ in range(2)] == ["ACTIVATION_CODE_INVALID"] * 2
    wait = assert_limited(register(), 2)
    time.sleep(wait)
    assert register().json()["error"] == "ACTIVATION_CODE_INVALID"


@pytest.mark.parametrize("peer, forwarded, trusted, expected", [
    ("198.51.100.7", "203.0.113.9", "", "198.51.100.7"),  # no trusted proxy: the header is ignored
    ("198.51.100.7", "203.0.113.9", "10.0.0.0/8", "198.51.100.7"),  # the peer is no proxy of ours
    ("10.0.0.2", "203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", "10.0.0.0/8", "203.0.113.9"),  # a chain of our proxies
    ("10.0.0.2", "", "10.0.0.0/8", "10.0.0.2"),
])
def test_client_address(settings, peer, forwarded, trusted, expected):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    request = Request({"type": "http", "client": (peer, 40000), "headers": headers})
    assert client_ip(request, settings.model_copy(update={"trusted_proxies": trusted})) == expected


# ------------------------------------------------------------------ Redis down


def test_with_redis_down_auth_limits_fail_closed_and_user_limits_fail_open(base_env, new_user):
    _, headers = new_user()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(base_env, **LIMITS, redis_url=nowhere, redis_timeout_s=0.5)
    with serve(create_app(settings)) as url, api_client(url, timeout=60) as c:
        # no unthrottled password guessing while the limiter is blind
        resp = c.post("/auth/login", json={"username": "someone", "password": "a password"})
        assert resp.status_code == 503 and resp.json()["error"] == "SERVICE_UNAVAILABLE"
        resp = c.post("/auth/register", json={"username": "someone", "email": "s@example.com",
                                              "password": "password123", "activation_code": "NV-NOPE"})
        assert resp.status_code == 503 and resp.json()["error"] == "SERVICE_UNAVAILABLE"
        # the per-user limits step aside: the request reaches the route (and its own checks)
        assert perform(c, headers).json()["error"] == "VOICE_CLONE_REQUIRED"
        assert upload(c, headers, samples.text_file()).json()["error"] == "SAMPLE_UNSUPPORTED"
