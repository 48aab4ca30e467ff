"""Domain errors carrying the public `{error, message, action}` shape.

Every failure a user can see is an `AppError` with a stable CODE, an HTTP status for the API
and a suggested action. The API maps them to JSON bodies; workers store them on the job record.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error with a stable public code. Subclasses fix `code`, `status` and a default action."""

    code = "INTERNAL_ERROR"
    status = 500
    default_action = "Try again later; if it keeps happening, contact support."

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.action = action or self.default_action
        if code:
            self.code = code
        if status:
            self.status = status
        self.headers = headers or {}
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, "action": self.action}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}({self.code}: {self.message})"


def error(code: str, status: int, default_action: str) -> type[AppError]:
    """Declare an AppError subclass in one line; keeps the catalogue below readable."""
    return type(code.title().replace("_", ""), (AppError,), {
        "code": code, "status": status, "default_action": default_action,
    })


ValidationFailed = error("VALIDATION_ERROR", 422, "Fix the fields named in the message and send again.")
AuthRequired = error("AUTH_REQUIRED", 401, "Log in and send the request with 'Authorization: Bearer <token>'.")
TokenExpired = error("TOKEN_EXPIRED", 401, "Log in again to get a fresh token.")
TokenInvalid = error("TOKEN_INVALID", 401, "Log in again; the token sent is not one we issued.")
InvalidCredentials = error("INVALID_CREDENTIALS", 401, "Check the username or email and the password.")
Forbidden = error("FORBIDDEN", 403, "Ask an administrator for access.")
NotFound = error("NOT_FOUND", 404, "Check the id; it may have been deleted or belong to another account.")
AlreadyExists = error("ALREADY_EXISTS", 409, "Choose another value or log in to the existing account.")
ActivationCodeInvalid = error(
    "ACTIVATION_CODE_INVALID", 422, "Check the activation code, or ask for a new one; each code works once."
)
VoiceCloneRequired = error("VOICE_CLONE_REQUIRED", 409, "Record a voice sample (POST /user/voice) first.")
CloneInProgress = error("CLONE_IN_PROGRESS", 409, "Wait for the current sample to finish processing.")
QuotaExceeded = error("QUOTA_EXCEEDED", 402, "Wait for next month's quota or ask for a higher limit.")
RateLimited = error("RATE_LIMITED", 429, "Slow down and retry after the time in Retry-After.")
SampleTooLarge = error("SAMPLE_TOO_LARGE", 413, "Send a shorter or more compressed recording.")
SampleUnsupported = error(
    "SAMPLE_UNSUPPORTED", 422, "Send an audio recording (mp3, wav, m4a, ogg, webm or flac)."
)
SampleTooShort = error("SAMPLE_TOO_SHORT", 422, "Record at least 30 seconds with 20 seconds or more of speech.")
SampleTooLong = error("SAMPLE_TOO_LONG", 422, "Record at most 3 minutes; one to two minutes is ideal.")
SampleTooQuiet = error("SAMPLE_TOO_QUIET", 422, "Record closer to the microphone in a quiet room.")
SampleClipped = error("SAMPLE_CLIPPED", 422, "Record a little further from the microphone or lower the input gain.")
SampleMultipleSpeakers = error(
    "SAMPLE_MULTIPLE_SPEAKERS", 422,
    "Record yourself alone, in a quiet room with no TV, radio or other voices, and upload that recording.")
ServiceUnavailable = error("SERVICE_UNAVAILABLE", 503, "Retry in a few seconds; we are reconnecting.")
ProviderUnavailable = error("PROVIDER_UNAVAILABLE", 503, "Retry later; the voice or text provider is not answering.")
ProviderRejected = error("PROVIDER_REJECTED", 502, "Contact support; the provider refused the request.")
VoiceLimitReached = error("VOICE_LIMIT_REACHED", 503, "Retry later; all voice slots are busy.")
PayloadTooLarge = error("PAYLOAD_TOO_LARGE", 413, "Send a smaller request body.")
