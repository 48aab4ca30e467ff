from typing import Annotated

from fastapi import APIRouter, Header, status

from api.deps import ClientIP, Db, Redis, RegisterLimit, SettingsDep
from shared.users import service
from shared.users.schemas import LoginRequest, RegisterRequest, TokenResponse, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses={429: {"description": "RATE_LIMITED (registrations per IP)"}})
def register(body: RegisterRequest, _limit: RegisterLimit, db: Db, settings: SettingsDep) -> UserOut:
    """Create an account with a single-use activation code."""
    return service.profile(service.register(db, settings, body), settings)


@router.post("/login", response_model=TokenResponse,
             responses={429: {"description": "RATE_LIMITED (failures per account and client, with backoff; "
                                             "attempts per account and per address from unknown clients)"}})
def login(body: LoginRequest, ip: ClientIP, r: Redis, db: Db, settings: SettingsDep,
          x_device_token: Annotated[str | None, Header(max_length=100)] = None) -> TokenResponse:
    """Exchange username (or email) and password for a bearer token. Send the `device_token`
    of an earlier login as `X-Device-Token`: others' failed guesses never hold that client back."""
    done = service.login(db, r, settings, body.username, body.password, ip=ip, device_token=x_device_token)
    return TokenResponse(access_token=done.token, expires_in=done.expires_in, device_token=done.device_token)
