from fastapi import APIRouter, status

from api.deps import Db, SettingsDep
from shared.users import service
from shared.users.schemas import LoginRequest, RegisterRequest, TokenResponse, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def register(body: RegisterRequest, db: Db, settings: SettingsDep) -> UserOut:
    """Create an account with a single-use activation code."""
    return service.profile(service.register(db, settings, body), settings)


@router.post("/login", response_model=TokenResponse)
def login(body: LoginRequest, db: Db, settings: SettingsDep) -> TokenResponse:
    """Exchange username (or email) and password for a bearer token."""
    token, ttl = service.authenticate(db, settings, body.username, body.password)
    return TokenResponse(access_token=token, expires_in=ttl)
