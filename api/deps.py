"""Typed dependencies so routes read as types: `user: CurrentUser`, `db: Db`, `jobs: Jobs`."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pymongo.database import Database

from api.security import client_ip, require_same_origin
from shared import ratelimit
from shared.config import Settings
from shared.errors import (
    AuthRequired,
    BadRequest,
    CrossSiteRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    TokenExpired,
    TokenInvalid,
    ValidationFailed,
)
from shared.jobs.service import JobStore
from shared.stores import mongo_db, redis_client
from shared.users.recent import RecentUsers
from shared.users.account import Account
from shared.users.service import get_account
from shared.users.tokens import verify_token

# What each dependency can answer, for the routes' `responses=` (api/openapi.error_responses):
#: any route that reads MongoDB or Redis (503 while one is down)
STORES = (ServiceUnavailable,)
#: `CurrentUser`: no, stale or foreign token, or a cookie-authenticated write from another
#: site; the account is read from MongoDB
AUTHENTICATED = (AuthRequired, TokenExpired, TokenInvalid, CrossSiteRequest, *STORES)
#: `AdminUser`
ADMIN = (*AUTHENTICATED, Forbidden)
#: a JSON body: validated (400 when it cannot even be decoded), and refused over 64 KB before
#: it is read (api/middleware.py)
JSON_BODY = (ValidationFailed, BadRequest, PayloadTooLarge)
#: `UploadLimit`, `RegisterLimit`, and `POST /perform`, which counts its hit in the route
#: (api/routes/perform.py)
LIMITED = (RateLimited, *STORES)

_bearer = HTTPBearer(auto_error=False, description="The access_token from POST /auth/login")
#: the web app's session (POST /auth/session): HttpOnly, SameSite=Strict, Secure in production
SESSION_COOKIE = "nv_session"
#: the web app's device token (shared/users/login_guard.py), sent back on its next session login
DEVICE_COOKIE = "nv_device"
_session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="SessionCookie",
                               description="Set by POST /auth/session for the web app served at /")
#: methods that change nothing, so a cross-site one does no harm (the answer stays unreadable
#: to the other site without CORS)
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in a
# worker thread, and those hand-offs were a large share of the submit path's CPU.
async def _settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _db(settings: SettingsDep) -> Database:
    return mongo_db(settings)


async def _redis(settings: SettingsDep) -> redis.Redis:
    return redis_client(settings)


Db = Annotated[Database, Depends(_db)]
Redis = Annotated[redis.Redis, Depends(_redis)]


async def _jobs(request: Request) -> JobStore:
    # One store per app, built on first use: on the API side it keeps nothing per request, and
    # building it (three sub-dependencies, the mirror script's digest) on every request was
    # measurable on the submit path.
    state = request.app.state
    store = getattr(state, "jobs", None)
    if store is None:
        settings: Settings = state.settings
        store = state.jobs = JobStore(mongo_db(settings), redis_client(settings), settings.job_status_ttl_s,
                                      broker_url=settings.celery_broker_url)
    return store


Jobs = Annotated[JobStore, Depends(_jobs)]


async def _token_subject(
    request: Request,
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_session_cookie)],
) -> str:
    """The user a bearer token or, failing that, the session cookie names. The browser attaches
    the cookie to any request to us, whoever's page starts it, so a cookie-authenticated write
    must come from our own origin; a bearer token is only ever sent on purpose."""
    if creds is not None and creds.credentials:
        return verify_token(settings, creds.credentials)["sub"]
    if session:
        if request.method not in _SAFE_METHODS:
            require_same_origin(request, settings)
        return verify_token(settings, session)["sub"]
    raise AuthRequired("This endpoint needs a bearer token or a session.", headers={"WWW-Authenticate": "Bearer"})


TokenSubject = Annotated[str, Depends(_token_subject)]


def _current_user(db: Db, user_id: TokenSubject) -> Account:
    try:
        return get_account(db, user_id)
    except NotFound as exc:
        raise TokenInvalid("The account for this token no longer exists.") from exc


#: the account, read for this request (screens that show it)
CurrentUser = Annotated[Account, Depends(_current_user)]


async def _recent_users(request: Request) -> RecentUsers:
    return request.app.state.recent_users


async def _recent_user(request: Request, user_id: TokenSubject) -> Account:
    users: RecentUsers = request.app.state.recent_users
    user = users.cached(user_id)
    if user is not None:
        return user
    try:
        return await run_in_threadpool(users.read, mongo_db(request.app.state.settings), user_id)
    except NotFound as exc:
        raise TokenInvalid("The account for this token no longer exists.") from exc


#: the account as read at most a few seconds ago (shared/users/recent.py): for paths that need
#: who is asking and cheap preconditions
RecentUser = Annotated[Account, Depends(_recent_user)]
Users = Annotated[RecentUsers, Depends(_recent_users)]


async def _admin_user(user: CurrentUser) -> Account:
    if not user.is_admin:
        raise Forbidden("This endpoint is for administrators.")
    return user


AdminUser = Annotated[Account, Depends(_admin_user)]


async def _client_ip(request: Request, settings: SettingsDep) -> str:
    return client_ip(request, settings)


ClientIP = Annotated[str, Depends(_client_ip)]


# Rate limits (shared/ratelimit.py): a parameter of one of these types counts the request and
# answers 429 RATE_LIMITED with Retry-After when over the limit.
def _upload_limit(user: CurrentUser, r: Redis, settings: SettingsDep) -> None:
    ratelimit.check_upload(r, settings, user.id)


def _register_limit(ip: ClientIP, r: Redis, settings: SettingsDep) -> None:
    ratelimit.check_register(r, settings, ip)


UploadLimit = Annotated[None, Depends(_upload_limit)]
RegisterLimit = Annotated[None, Depends(_register_limit)]
