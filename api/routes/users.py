from fastapi import APIRouter

from api.deps import AUTHENTICATED, JSON_BODY, CurrentUser, Db, SettingsDep, Users
from api.openapi import error_responses
from shared.quota import service as quota
from shared.users import service
from shared.users.schemas import UserOut, UserSettings, UserSettingsUpdate

router = APIRouter(prefix="/user", tags=["user"], responses=error_responses(AUTHENTICATED))


@router.get("/me", name="me")
def me(user: CurrentUser, db: Db, settings: SettingsDep) -> UserOut:
    """Your account, voice state and this month's characters."""
    if quota.roll_over(db, user.oid):  # a new month started: show the fresh quota
        user = service.get_account(db, user.id)
    return service.profile(user, settings)


@router.get("/settings", name="settings-get")
def get_settings(user: CurrentUser) -> UserSettings:
    """Your preferences for the notes: language, voice, background sound, title and date."""
    return user.settings


@router.put("/settings", name="settings-update", responses=error_responses(AUTHENTICATED, JSON_BODY))
def put_settings(body: UserSettingsUpdate, user: CurrentUser, db: Db, users: Users) -> UserSettings:
    """Change any subset of the settings; fields left out keep their value."""
    saved = service.update_settings(db, user, body)
    users.forget(user.id)
    return saved
