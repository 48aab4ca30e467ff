"""Account use cases: register, log in, read the profile, read and change settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pymongo
import redis
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

from shared.config import Settings
from shared.errors import ActivationCodeInvalid, AlreadyExists, InvalidCredentials, NotFound
from shared.users import codes, login_guard, repository
from shared.users.account import Account
from shared.users.passwords import hash_password, needs_rehash, verify_password
from shared.users.schemas import RegisterRequest, UserOut, UserSettings, UserSettingsUpdate
from shared.users.tokens import issue_token


def register(db: Database, settings: Settings, req: RegisterRequest) -> Account:
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
    return Account.of(doc)


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


def get_account(db: Database, user_id: str) -> Account:
    """The account, read now. NotFound when it does not exist."""
    user = repository.by_id(db, _oid(user_id))
    if user is None:
        raise NotFound("No such user.")
    return Account.of(user)


def profile(user: Account, settings: Settings) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        voice_state=user.voice_state,
        charCount=user.char_count,
        monthlyLimit=settings.monthly_char_limit if user.monthly_limit is None else user.monthly_limit,
        charsUsedRaw=user.chars_used_raw,
        charsUsedEffective=user.char_count,
        quotaPeriod=user.quota_period,
    )


def update_settings(db: Database, user: Account, update: UserSettingsUpdate) -> UserSettings:
    """The account's settings with `update` applied, validated and saved."""
    merged = user.settings.model_dump() | update.model_dump(exclude_unset=True)
    validated = UserSettings.model_validate(merged)
    repository.save_settings(db, user.oid, validated.model_dump(mode="json"))
    return validated


def ensure_indexes(db: Database) -> None:
    repository.ensure_indexes(db)
    codes.ensure_indexes(db)
