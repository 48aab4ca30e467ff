from fastapi import APIRouter

from api.deps import CurrentUser, Db, SettingsDep
from shared.users import service
from shared.users.schemas import UserOut, UserSettings, UserSettingsUpdate

router = APIRouter(prefix="/user", tags=["user"])


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser, settings: SettingsDep) -> UserOut:
    return service.profile(user, settings)


@router.get("/settings", response_model=UserSettings)
def get_settings(user: CurrentUser) -> UserSettings:
    return service.read_settings(user)


@router.put("/settings", response_model=UserSettings)
def put_settings(body: UserSettingsUpdate, user: CurrentUser, db: Db) -> UserSettings:
    """Change any subset of the settings; fields left out keep their value."""
    return service.update_settings(db, str(user["_id"]), body)
