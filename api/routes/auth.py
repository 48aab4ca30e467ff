from typing import Annotated

from fastapi import APIRouter, Header, status

from api.deps import JSON_BODY, LIMITED, STORES, ClientIP, Db, Redis, RegisterLimit, SettingsDep
from api.openapi import error_responses
from shared.errors import ActivationCodeInvalid, AlreadyExists, InvalidCredentials, RateLimited
from shared.users import service
from shared.users.schemas import LoginRequest, RegisterRequest, TokenResponse, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])


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
