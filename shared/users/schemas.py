"""Request and response shapes for accounts and settings. Responses never carry a hash."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from typing_extensions import Annotated

Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32,
                                            pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Strict):
    username: Username
    email: EmailStr
    password: Password
    activation_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=64)]


class LoginRequest(_Strict):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)] = Field(
        description="Username or email address")
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenResponse(BaseModel):
    """A bearer token: send it as `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")
    device_token: str | None = Field(None, description=(
        "Issued when the client sent none (or an unknown one): send it back as the `X-Device-Token` "
        "header on later logins, so failed guesses by others never hold this client back."))


class SessionResponse(BaseModel):
    """A browser session: the token travels in an HttpOnly cookie the page cannot read, so a
    script injected into the page cannot carry it away."""

    expires_in: int = Field(description="Seconds until the session cookie expires; log in again after that.")


class UserSettings(_Strict):
    """A user's preferences; every field has a default so older records read cleanly."""

    language: Literal["english", "spanish"] = Field("english", description="The language notes are written in.")
    voice_similarity: float = Field(0.75, ge=0, le=1, description="How closely speech keeps to your voice.")
    stability: float = Field(0.5, ge=0, le=1, description="Higher is steadier, lower more expressive.")
    add_background_sound: bool = Field(True, description="Mix the note over a soft fan bed.")
    background_volume: float = Field(0.3, ge=0, le=1, description="Loudness of the fan bed.")
    sex: Literal["male", "female"] | None = None
    OS: Literal["android", "ios"] | None = Field(None, description="The client's platform.")
    voice_note_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] = Field(
        "Voice note", description="The title of new notes (the routine's title when empty).")
    voice_note_date: dt.date | None = Field(None, description="The date shown on new notes (today when unset).")


class UserSettingsUpdate(_Strict):
    """PUT body: any subset of the settings; the merge is validated as a whole."""

    language: Literal["english", "spanish"] | None = None
    voice_similarity: float | None = Field(None, ge=0, le=1)
    stability: float | None = Field(None, ge=0, le=1)
    add_background_sound: bool | None = None
    background_volume: float | None = Field(None, ge=0, le=1)
    sex: Literal["male", "female"] | None = None
    OS: Literal["android", "ios"] | None = None
    voice_note_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] | None = None
    voice_note_date: dt.date | None = None


class UserOut(BaseModel):
    """Your account, voice state and this month's characters."""

    id: str = Field(examples=["665f1c2e8a4b2c0012345678"])
    username: str = Field(examples=["ana"])
    email: str = Field(examples=["ana@example.com"])
    role: Literal["user", "admin"]
    created_at: dt.datetime
    voice_state: str = Field("none", description="`none`, `pending`, `ready`, `failed` or `evicted` "
                                                 "(GET /user/voice/meta has the details).")
    charCount: int = Field(0, description="Effective characters charged this month.")
    monthlyLimit: int = Field(description="Effective characters allowed per month.", examples=[10000])
    charsUsedRaw: int = Field(0, description="Characters spoken this month, before the model's cost factor.")
    charsUsedEffective: int = Field(0, description="Same as `charCount`.")
    quotaPeriod: str | None = Field(None, description="The quota month, `YYYY-MM`.", examples=["2025-06"])


class ActivationCodes(BaseModel):
    codes: list[str] = Field(description="Single-use codes for POST /auth/register.", examples=[["7KQ2-M9XD-P4TA"]])
