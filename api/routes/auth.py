from fastapi import APIRouter, status

from api.deps import ClientIP, Db, Redis, RegisterLimit, SettingsDep
from shared import ratelimit
from shared.users import service
from shared.users.schemas import LoginRequest, RegisterRequest, TokenResponse, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses={429: {"description": "RATE_LIMITED (registrations per IP)"}})
def register(body: RegisterRequest, _limit: RegisterLimit, db: Db, settings: SettingsDep) -> UserOut:
    """Create an account with a single-use activation code."""
    return service.profile(service.register(db, settings, body), settings)


@router.post("/login", response_model=TokenResponse,
             responses={429: {"description": "RATE_LIMITED (attempts per IP, failures per account)"}})
def login(body: LoginRequest, ip: ClientIP, r: Redis, db: Db, settings: SettingsDep) -> TokenResponse:
    """Exchange username (or email) and password for a bearer token."""
    ratelimit.check_login(r, settings, ip, body.username)
    token, ttl = service.authenticate(db, settings, body.username, body.password)
    ratelimit.login_succeeded(r, body.username)
    return TokenResponse(access_token=token, expires_in=ttl)
