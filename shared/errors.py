"""Domain errors carrying the public `{error, message, action}` shape.

Every failure a user can see is an `AppError` with a stable CODE, an HTTP status for the API
and a suggested action. The API maps them to JSON bodies; workers store them on the job record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


# The catalogue: one class per code.


class ValidationFailed(AppError):
    code = "VALIDATION_ERROR"
    status = 422
    default_action = "Fix the fields named in the message and send again."


class BadRequest(AppError):
    """A body that cannot be decoded at all."""

    code = "BAD_REQUEST"
    status = 400
    default_action = "Check the request format."


class AuthRequired(AppError):
    code = "AUTH_REQUIRED"
    status = 401
    default_action = "Log in and send the request with 'Authorization: Bearer <token>'."


class TokenExpired(AppError):
    code = "TOKEN_EXPIRED"
    status = 401
    default_action = "Log in again to get a fresh token."


class TokenInvalid(AppError):
    code = "TOKEN_INVALID"
    status = 401
    default_action = "Log in again; the token sent is not one we issued."


class InvalidCredentials(AppError):
    code = "INVALID_CREDENTIALS"
    status = 401
    default_action = "Check the username or email and the password."


class Forbidden(AppError):
    code = "FORBIDDEN"
    status = 403
    default_action = "Ask an administrator for access."


class CrossSiteRequest(AppError):
    """A cookie-authenticated write (or a session login) that a page of another site started:
    the browser attached our cookie, so only the request's origin tells it apart (CSRF)."""

    code = "CROSS_SITE_REQUEST"
    status = 403
    default_action = "Use the app at its own address, or send a bearer token instead of the cookie."


class NotFound(AppError):
    code = "NOT_FOUND"
    status = 404
    default_action = "Check the id; it may have been deleted or belong to another account."


class AlreadyExists(AppError):
    code = "ALREADY_EXISTS"
    status = 409
    default_action = "Choose another value or log in to the existing account."


class ActivationCodeInvalid(AppError):
    code = "ACTIVATION_CODE_INVALID"
    status = 422
    default_action = "Check the activation code, or ask for a new one; each code works once."


class VoiceCloneRequired(AppError):
    code = "VOICE_CLONE_REQUIRED"
    status = 409
    default_action = "Record a voice sample (POST /user/voice) first."


class CloneInProgress(AppError):
    code = "CLONE_IN_PROGRESS"
    status = 409
    default_action = "Wait for the current sample to finish processing."


class QuotaExceeded(AppError):
    code = "QUOTA_EXCEEDED"
    status = 402
    default_action = "Wait for next month's quota or ask for a higher limit."


class RateLimited(AppError):
    code = "RATE_LIMITED"
    status = 429
    default_action = "Slow down and retry after the time in Retry-After."


class SampleTooLarge(AppError):
    code = "SAMPLE_TOO_LARGE"
    status = 413
    default_action = "Send a shorter or more compressed recording."


class SampleUnsupported(AppError):
    code = "SAMPLE_UNSUPPORTED"
    status = 422
    default_action = "Send an audio recording (mp3, wav, m4a, ogg, webm or flac)."


class SampleTooShort(AppError):
    code = "SAMPLE_TOO_SHORT"
    status = 422
    default_action = "Record at least 30 seconds with 20 seconds or more of speech."


class SampleTooLong(AppError):
    code = "SAMPLE_TOO_LONG"
    status = 422
    default_action = "Record at most 3 minutes; one to two minutes is ideal."


class SampleTooQuiet(AppError):
    code = "SAMPLE_TOO_QUIET"
    status = 422
    default_action = "Record closer to the microphone in a quiet room."


class SampleClipped(AppError):
    code = "SAMPLE_CLIPPED"
    status = 422
    default_action = "Record a little further from the microphone or lower the input gain."


class SampleMultipleSpeakers(AppError):
    """The sample's speech splits into clearly separate voices (docs/VOICE_MATCH.md)."""

    code = "SAMPLE_MULTIPLE_SPEAKERS"
    status = 422
    default_action = ("Record yourself alone, in a quiet room with no TV, radio or other voices, and upload that "
                      "recording.")


class SampleNotSpeech(AppError):
    """Music or noise dominates the sample: too little of it sounds like syllables of a voice
    (docs/VOICE_MATCH.md)."""

    code = "SAMPLE_NOT_SPEECH"
    status = 422
    default_action = ("Record your own voice reading aloud, in a quiet room with no music, TV or fan running, and "
                      "upload that recording.")


class ServiceUnavailable(AppError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_action = "Retry in a few seconds; we are reconnecting."


class PayloadTooLarge(AppError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    default_action = "Send a smaller request body."


# Provider errors: raised by the provider adapters; callers branch on the class (re-warm on
# VoiceNotFound, refund and fail on the terminal ones).


class ProviderError(AppError):
    code = "PROVIDER_REJECTED"
    status = 502
    default_action = "Contact support; the provider refused the request."
    #: whether a later attempt of the same call may succeed
    retryable = False

    def __init__(self, message: str, *, provider: str = "", http_status: int | None = None,
                 provider_code: str | None = None, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.provider = provider
        self.http_status = http_status
        self.provider_code = provider_code
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """Network failure, timeout, 5xx or 429 after the retries ran out, or the circuit is open."""

    code = "PROVIDER_UNAVAILABLE"
    status = 503
    default_action = "Retry later; the provider is not answering."
    retryable = True


class RequestOutcomeUnknown(ProviderUnavailable):
    """The request may or may not have been carried out (timed out awaiting the answer, the
    connection dropped mid-answer, a gateway timeout, an unreadable success body).

    Raised without retrying by non-idempotent calls (create_voice). Still retryable for the
    caller once it has reconciled: list the voices and look for the name it asked for."""


class ProviderRejected(ProviderError):
    """A 4xx the provider will answer the same way again."""


class ProviderAuthError(ProviderRejected):
    """401 invalid_api_key: our configuration is wrong, not the user's request."""

    default_action = "An operator must check the provider API key."


class ProviderQuotaExceeded(ProviderRejected):
    """401 quota_exceeded: the provider account has no characters left."""

    default_action = "Retry later; the service's provider quota is used up for now."


class VoiceLimitReached(ProviderError):
    """400 voice_limit_reached: no free custom-voice slot at the provider."""

    code = "VOICE_LIMIT_REACHED"
    status = 503
    default_action = "Retry later; all voice slots are busy."


class VoiceNotFound(ProviderError):
    """400/404 voice_not_found: the remote voice is gone (evicted or deleted elsewhere)."""

    code = "VOICE_NOT_FOUND"
    status = 404
    default_action = "The voice will be re-created from your stored sample."


class JobTimedOut(AppError):
    """A run stopped by its hard time limit."""

    code = "JOB_TIMEOUT"
    status = 504
    default_action = "Try again; if it keeps happening, contact support."


class JobLost(AppError):
    """A job whose message was lost more often than the stranded-job sweeper re-sends it."""

    code = "JOB_LOST"
    status = 500
    default_action = "Try again; we could not process this request."


class ErrorCode(StrEnum):
    """Every `error` code a client can receive, in a response body or in a failed job's `error`.

    Listed by hand rather than collected from the AppError subclasses, so the published schema
    never depends on which modules a process happened to import; tests/contract checks that
    every AppError subclass, and every code api/errors.py answers with, is listed here."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    AUTH_REQUIRED = "AUTH_REQUIRED"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_INVALID = "TOKEN_INVALID"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    FORBIDDEN = "FORBIDDEN"
    CROSS_SITE_REQUEST = "CROSS_SITE_REQUEST"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    ACTIVATION_CODE_INVALID = "ACTIVATION_CODE_INVALID"
    VOICE_CLONE_REQUIRED = "VOICE_CLONE_REQUIRED"
    CLONE_IN_PROGRESS = "CLONE_IN_PROGRESS"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    SAMPLE_TOO_LARGE = "SAMPLE_TOO_LARGE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    SAMPLE_UNSUPPORTED = "SAMPLE_UNSUPPORTED"
    SAMPLE_TOO_SHORT = "SAMPLE_TOO_SHORT"
    SAMPLE_TOO_LONG = "SAMPLE_TOO_LONG"
    SAMPLE_TOO_QUIET = "SAMPLE_TOO_QUIET"
    SAMPLE_CLIPPED = "SAMPLE_CLIPPED"
    SAMPLE_MULTIPLE_SPEAKERS = "SAMPLE_MULTIPLE_SPEAKERS"
    SAMPLE_NOT_SPEECH = "SAMPLE_NOT_SPEECH"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    PROVIDER_REJECTED = "PROVIDER_REJECTED"
    VOICE_LIMIT_REACHED = "VOICE_LIMIT_REACHED"
    VOICE_NOT_FOUND = "VOICE_NOT_FOUND"
    JOB_LOST = "JOB_LOST"
    JOB_TIMEOUT = "JOB_TIMEOUT"
    HTTP_ERROR = "HTTP_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ErrorBody(BaseModel):
    """The body of every error response (and of a failed job's `error`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "error": "VOICE_CLONE_REQUIRED", "message": "Record your voice before asking for a note.",
        "action": "Record a voice sample (POST /user/voice) first."}]})

    error: ErrorCode = Field(description="Stable machine-readable code; branch on this, not on the message.")
    message: str = Field(description="What went wrong, for a person.")
    action: str = Field(description="What the caller can do about it.")
    details: dict[str, Any] | None = Field(None, description=(
        "Sent by some errors only: structured help, e.g. `{field, allowed}` for an unknown value."))
