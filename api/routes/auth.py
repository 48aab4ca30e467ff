from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import (
    DEVICE_COOKIE,
    JSON_BODY,
    LIMITED,
    SESSION_COOKIE,
    STORES,
    ClientIP,
    Db,
    Redis,
    RegisterLimit,
    SettingsDep,
)
from api.openapi import SESSION_SET_COOKIE, error_responses
from api.security import require_same_origin
from shared.errors import ActivationCodeInvalid, AlreadyExists, CrossSiteRequest, InvalidCredentials, RateLimited
from shared.users import service
from shared.users.schemas import LoginRequest, RegisterRequest, SessionResponse, TokenResponse, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])
#: the device cookie outlives sessions: it is what spares this browser others' failed guesses
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600


@router.post("/register", name="register", status_code=status.HTTP_201_CREATED,
             responses=error_responses(JSON_BODY, LIMITED, ActivationCodeInvalid, AlreadyExists))
def register(body: RegisterRequest, _limit: RegisterLimit, db: Db, settings: SettingsDep) -> UserOut:
    """Create an account with a single-use activation code. Registrations are limited per
    address (429)."""
    return service.profile(service.register(db, settings, body), settings)


@router.post("/login", name="login",
             responses=error_responses(JSON_BODY, STORES, InvalidCredentials, RateLimited))
def login(body: LoginRequest, ip: ClientIP, r: Redis, db: Db, settings: SettingsDep,
          x_device_token: Annotated[str | None, Header(max_length=100, description=(
              "The `device_token` an earlier login of this client was given."))] = None) -> TokenResponse:
    """Exchange username (or email) and password for a bearer token. Send the `device_token`
    of an earlier login as `X-Device-Token`: others' failed guesses never hold that client back.
    Failures are limited per account and client with backoff, and attempts from unknown clients
    per account and per address (429)."""
    done = service.login(db, r, settings, body.username, body.password, ip=ip, device_token=x_device_token)
    return TokenResponse(access_token=done.token, expires_in=done.expires_in, device_token=done.device_token)


@router.post("/session", name="session-create", responses={
    200: {"headers": SESSION_SET_COOKIE},
    **error_responses(JSON_BODY, STORES, InvalidCredentials, RateLimited, CrossSiteRequest)})
def create_session(body: LoginRequest, request: Request, response: Response, ip: ClientIP, r: Redis, db: Db,
                   settings: SettingsDep) -> SessionResponse:
    """Log in for the web app: the same check, limits and device tokens as POST /auth/login,
    but the token is set as an HttpOnly, `SameSite=Strict` cookie (`Secure` in production) that
    then authenticates every route a bearer token does. The device token travels as a cookie
    too. Refused (403) when another site's page sent it, so no one can log a visitor in to
    their own account unnoticed."""
    require_same_origin(request, settings)
    done = service.login(db, r, settings, body.username, body.password, ip=ip,
                         device_token=request.cookies.get(DEVICE_COOKIE))
    secure = settings.is_production
    response.set_cookie(SESSION_COOKIE, done.token, max_age=done.expires_in, path="/", httponly=True,
                        samesite="strict", secure=secure)
    if done.device_token:
        response.set_cookie(DEVICE_COOKIE, done.device_token, max_age=DEVICE_COOKIE_MAX_AGE_S,
                            path="/auth/session", httponly=True, samesite="strict", secure=secure)
    return SessionResponse(expires_in=done.expires_in)


@router.delete("/session", name="session-delete", status_code=204, response_class=Response, responses={
    204: {"description": "The session cookie is cleared.", "headers": SESSION_SET_COOKIE},
    **error_responses(CrossSiteRequest)})
def delete_session(request: Request, settings: SettingsDep) -> Response:
    """Log the web app out: clears the session cookie. Answers 204 with or without a session
    (a stale page may log out twice); refused (403) when another site's page sent it."""
    require_same_origin(request, settings)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=settings.is_production)
    return response
