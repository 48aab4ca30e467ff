"""Accounts over real HTTP: register, log in, profile, tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.conftest import TEST_JWT_SECRET


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert body["message"] and body["action"]
    return body


def test_register_login_me(client, new_user):
    user = new_user.register()
    headers = new_user.login(user["username"])
    me = client.get("/user/me", headers=headers)
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == user["username"]
    assert body["email"] == user["email"]
    assert body["charCount"] == 0 and body["monthlyLimit"] == 4000
    assert "password" not in me.text and "hash" not in me.text


def test_login_by_email_and_case_insensitive_username(client, new_user):
    user = new_user.register()
    assert client.post("/auth/login", json={"username": user["email"].upper(),
                                            "password": user["password"]}).status_code == 200
    assert client.post("/auth/login", json={"username": user["username"].upper(),
                                            "password": user["password"]}).status_code == 200


def test_login_token_shape(client, new_user):
    user = new_user.register()
    resp = client.post("/auth/login", json={"username": user["username"], "password": user["password"]})
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    claims = jwt.decode(body["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], issuer="newvisions")
    assert claims["sub"] == user["id"]


def test_wrong_password_and_unknown_user_look_the_same(client, new_user):
    user = new_user.register()
    a = _error(client.post("/auth/login", json={"username": user["username"], "password": "wrong pass 1"}),
               401, "INVALID_CREDENTIALS")
    b = _error(client.post("/auth/login", json={"username": "nobody-here", "password": "wrong pass 1"}),
               401, "INVALID_CREDENTIALS")
    assert a == b


def test_activation_code_single_use(client, new_user):
    code = new_user.code()
    first = client.post("/auth/register", json={"username": "first_" + code[-4:], "email": f"f{code[-4:]}@ex.com",
                                                "password": "password123", "activation_code": code})
    assert first.status_code == 201
    second = client.post("/auth/register", json={"username": "second_" + code[-4:],
                                                 "email": f"s{code[-4:]}@ex.com",
                                                 "password": "password123", "activation_code": code})
    _error(second, 422, "ACTIVATION_CODE_INVALID")


def test_unknown_and_expired_codes_refused(client, db, new_user):
    from datetime import timedelta

    from shared.clock import now

    _error(client.post("/auth/register", json={"username": "nocode1", "email": "nocode1@ex.com",
                                               "password": "password123", "activation_code": "NV-NOPE-NOPE-NOPE"}),
           422, "ACTIVATION_CODE_INVALID")
    code = new_user.code()
    db["activation_codes"].update_one({"code": code}, {"$set": {"expires_at": now() - timedelta(days=1)}})
    _error(client.post("/auth/register", json={"username": "late1", "email": "late1@ex.com",
                                               "password": "password123", "activation_code": code}),
           422, "ACTIVATION_CODE_INVALID")


def test_duplicate_username_does_not_burn_the_code(client, db, new_user):
    user = new_user.register()
    code = new_user.code()
    resp = client.post("/auth/register", json={"username": user["username"], "email": "other@example.com",
                                               "password": "password123", "activation_code": code})
    _error(resp, 409, "ALREADY_EXISTS")
    assert db["activation_codes"].find_one({"code": code})["used_by"] is None
    resp = client.post("/auth/register", json={"username": "fresh" + code[-4:], "email": user["email"],
                                               "password": "password123", "activation_code": code})
    _error(resp, 409, "ALREADY_EXISTS")
    assert "email" in resp.json()["message"]
    # the code still works for a valid registration
    ok = client.post("/auth/register", json={"username": "fresh" + code[-4:], "email": "fresh@example.org",
                                             "password": "password123", "activation_code": code})
    assert ok.status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"username": "ab", "email": "x@example.com", "password": "password123", "activation_code": "NV-1"}, "username"),
    ({"username": "valid_name", "email": "not-an-email", "password": "password123", "activation_code": "NV-1234"},
     "email"),
    ({"username": "valid_name", "email": "x@example.com", "password": "short", "activation_code": "NV-1234"},
     "password"),
    ({"username": "bad name!", "email": "x@example.com", "password": "password123", "activation_code": "NV-1234"},
     "username"),
    ({"username": "valid_name", "email": "x@example.com", "password": 12345678, "activation_code": "NV-1234"},
     "password"),
    ({"username": "valid_name", "email": "x@example.com", "password": "password123"}, "activation_code"),
])
def test_register_bad_input(client, body, field):
    body = _error(client.post("/auth/register", json=body), 422, "VALIDATION_ERROR")
    assert field in body["message"]


@pytest.mark.parametrize("payload, content_type", [
    (b"{not json", "application/json"),
    (b"[]", "application/json"),
    (b"", "application/json"),
    (b"username=a&password=b", "application/x-www-form-urlencoded"),
])
def test_malformed_bodies_are_422_not_500(client, payload, content_type):
    resp = client.post("/auth/login", content=payload, headers={"content-type": content_type})
    _error(resp, 422, "VALIDATION_ERROR")


def test_missing_expired_and_tampered_tokens(client, new_user, settings):
    _error(client.get("/user/me"), 401, "AUTH_REQUIRED")
    user, headers = new_user()
    token = headers["Authorization"].split()[1]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}AAAA"
    _error(client.get("/user/me", headers={"Authorization": f"Bearer {tampered}"}), 401, "TOKEN_INVALID")
    past = int(time.time()) - 3600
    expired = jwt.encode({"sub": user["id"], "iat": past - 60, "exp": past, "iss": "newvisions", "role": "user"},
                         TEST_JWT_SECRET, algorithm="HS256")
    _error(client.get("/user/me", headers={"Authorization": f"Bearer {expired}"}), 401, "TOKEN_EXPIRED")
    other_key = jwt.encode({"sub": user["id"], "iat": int(time.time()), "exp": int(time.time()) + 600,
                            "iss": "newvisions"}, "another-secret-" + "y" * 40, algorithm="HS256")
    _error(client.get("/user/me", headers={"Authorization": f"Bearer {other_key}"}), 401, "TOKEN_INVALID")
    unsigned = jwt.encode({"sub": user["id"], "iat": int(time.time()), "exp": int(time.time()) + 600,
                           "iss": "newvisions"}, None, algorithm="none")
    _error(client.get("/user/me", headers={"Authorization": f"Bearer {unsigned}"}), 401, "TOKEN_INVALID")


def test_password_is_hashed_with_argon2(db, new_user):
    user = new_user.register()
    stored = db["users"].find_one({"username": user["username"]})
    assert stored["password_hash"].startswith("$argon2id$")
    assert user["password"] not in stored["password_hash"]


def test_a_token_already_accepted_still_expires_on_time(client, new_user):
    """Verified tokens are remembered (shared/users/tokens.py); the expiry must not be."""
    user, _ = new_user()
    exp = int(time.time()) + 2
    token = jwt.encode({"sub": user["id"], "iat": exp - 60, "exp": exp, "iss": "newvisions", "role": "user"},
                       TEST_JWT_SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/user/me", headers=headers).status_code == 200
    assert client.get("/user/me", headers=headers).status_code == 200  # the remembered verification
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    _error(client.get("/user/me", headers=headers), 401, "TOKEN_EXPIRED")
