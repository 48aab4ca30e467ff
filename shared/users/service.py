"""Account use cases: register, log in, read the profile, read and change settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pymongo
import redis
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

from shared.config import Settings
from shared.errors import ActivationCodeInvalid, AlreadyExists, InvalidCredentials, NotFound
from shared.users import codes, login_guard, repository
from shared.users.passwords import hash_password, needs_rehash, verify_password
from shared.users.schemas import RegisterRequest, UserOut, UserSettings, UserSettingsUpdate
from shared.users.tokens import issue_token


def register(db: Database, settings: Settings, req: RegisterRequest) -> dict[str, Any]:
    """Create the account, consuming the activation code exactly once.

    The code is claimed first (atomically) under a one-off marker; if the account cannot be
    created (name or email taken) the claim is released, so a failed registration never burns
    a code and a code never creates two accounts."""
    claimant = f"pending:{uuid.uuid4().hex}"
    if not codes.claim_code(db, req.activation_code, claimant):
        raise ActivationCodeInvalid("The activation code is unknown, already used or expired.")
    try:
        doc = repository.create_account(
            db, username=req.username, email=req.email, password_hash=hash_password(req.password),
            settings=UserSettings().model_dump(mode="json"), monthly_limit=settings.monthly_char_limit)
    except pymongo.errors.DuplicateKeyError as exc:
        codes.release_code(db, req.activation_code, claimant)
        field = "email" if "email" in str(exc.details or exc) else "username"
        raise AlreadyExists(f"That {field} is already registered.") from exc
    except Exception:
        codes.release_code(db, req.activation_code, claimant)
        raise
    codes.confirm_code(db, req.activation_code, claimant, str(doc["_id"]))
    return doc


@dataclass(frozen=True)
class LoggedIn:
    token: str
    expires_in: int
    device_token: str | None  # issued to a client that had none (or an unknown one)


def login(db: Database, r: redis.Redis, settings: Settings, login: str, password: str, *, ip: str,
          device_token: str | None) -> LoggedIn:
    """Check the credentials (the same error for any wrong part), throttled by login_guard;
    a client without a valid device token gets one, to send on its next logins."""
    login = login.strip()
    user = repository.credentials_of(db, login)
    known = login_guard.device_hash(device_token) if device_token else None
    if user is None or known not in {d.get("hash") for d in user.get("devices") or ()}:
        known = None
    attempt = login_guard.begin(r, settings, account=login_guard.account_key(user and str(user["_id"]), login),
                                ip=ip, known_device=known)
    if not verify_password(user["password_hash"] if user else None, password):
        raise InvalidCredentials("Wrong username/email or password.")
    login_guard.succeeded(r, attempt, ip)
    issued = login_guard.new_device_token() if known is None else None
    repository.record_login(
        db, user["_id"], password_hash=hash_password(password) if needs_rehash(user["password_hash"]) else None,
        device_hash=login_guard.device_hash(issued) if issued else None)
    token, ttl = issue_token(settings, str(user["_id"]), user.get("role", "user"))
    return LoggedIn(token, ttl, issued)


def _oid(user_id: str) -> ObjectId:
    try:
        return ObjectId(user_id)
    except (InvalidId, TypeError) as exc:
        raise NotFound("No such user.") from exc


def get_user(db: Database, user_id: str) -> dict[str, Any]:
    user = repository.by_id(db, _oid(user_id))
    if user is None:
        raise NotFound("No such user.")
    return user


def profile(user: dict[str, Any], settings: Settings) -> UserOut:
    return UserOut(
        id=str(user["_id"]),
        username=user["username"],
        email=user["email"],
        role=user.get("role", "user"),
        created_at=user["created_at"],
        voice_state=user.get("voice_state", "none"),
        charCount=user.get("charCount", 0),
        monthlyLimit=user.get("monthlyLimit", settings.monthly_char_limit),
        charsUsedRaw=user.get("charsUsedRaw", 0),
        charsUsedEffective=user.get("charCount", 0),
        quotaPeriod=user.get("quota_period"),
    )


def read_settings(user: dict[str, Any]) -> UserSettings:
    """Stored settings with defaults for missing fields; unknown legacy keys are dropped."""
    stored = {k: v for k, v in (user.get("settings") or {}).items() if k in UserSettings.model_fields}
    return UserSettings.model_validate(stored)


def update_settings(db: Database, user_id: str, update: UserSettingsUpdate) -> UserSettings:
    user = get_user(db, user_id)
    merged = read_settings(user).model_dump() | update.model_dump(exclude_unset=True)
    validated = UserSettings.model_validate(merged)
    repository.save_settings(db, user["_id"], validated.model_dump(mode="json"))
    return validated


def ensure_indexes(db: Database) -> None:
    repository.ensure_indexes(db)
    codes.ensure_indexes(db)
