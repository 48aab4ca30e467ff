"""The account as a request sees it: the typed fields of the `users` document that the API's
routes and the services they call use, built once per read (and shared, frozen, by the
recent-users cache). Writes never go through it: they are the repository's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId

from shared.users.schemas import UserSettings


def read_settings(user: dict[str, Any]) -> UserSettings:
    """Stored settings with defaults for missing fields; unknown legacy keys are dropped."""
    stored = {k: v for k, v in (user.get("settings") or {}).items() if k in UserSettings.model_fields}
    return UserSettings.model_validate(stored)


@dataclass(frozen=True)
class StoredSample:
    """The account's current voice sample (GridFS ids as strings) and what the clone found in it."""
    original_id: str | None
    normalized_id: str | None
    sha256: str | None
    quality: dict[str, Any] | None
    format: str | None
    saved_at: datetime | None


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    email: str
    role: str
    created_at: datetime
    settings: UserSettings
    # the voice: none|pending|ready|failed|evicted, the provider's id of the current and the
    # replaced voice, the sample it was made from, and the clone job holding the slot if any
    voice_state: str
    voice_clone_id: str | None
    voice_clone_previous_id: str | None
    sample: StoredSample | None
    clone_job_id: str | None
    voice_match: dict[str, Any] | None  # {score, band, cosine} (docs/VOICE_MATCH.md)
    voice_flag: dict[str, Any] | None  # {code, message, action} under the match floor
    last_clone: dict[str, Any] | None  # {job_id, action, error, at}
    # this month's characters (shared/quota); None: an account created before the field
    quota_period: str | None
    char_count: int
    chars_used_raw: int
    monthly_limit: int | None

    @property
    def oid(self) -> ObjectId:
        return ObjectId(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Account:
        sample = doc.get("sample")
        return cls(
            id=str(doc["_id"]), username=doc["username"], email=doc["email"], role=doc.get("role", "user"),
            created_at=doc["created_at"], settings=read_settings(doc),
            voice_state=doc.get("voice_state", "none"), voice_clone_id=doc.get("voice_clone_id"),
            voice_clone_previous_id=doc.get("voice_clone_previous_id"),
            sample=StoredSample(
                original_id=sample.get("original_id"), normalized_id=sample.get("normalized_id"),
                sha256=sample.get("sha256"), quality=sample.get("quality"), format=sample.get("format"),
                saved_at=sample.get("saved_at")) if sample else None,
            clone_job_id=(doc.get("clone_job") or {}).get("id"),
            voice_match=doc.get("voice_match"), voice_flag=doc.get("voice_flag"), last_clone=doc.get("last_clone"),
            quota_period=doc.get("quota_period"), char_count=doc.get("charCount", 0),
            chars_used_raw=doc.get("charsUsedRaw", 0), monthly_limit=doc.get("monthlyLimit"),
        )
