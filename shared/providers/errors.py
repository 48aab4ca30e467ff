"""Errors raised by provider adapters (voice and text).

They are AppErrors so a job can store them as they are; callers branch on the class
(re-warm on VoiceNotFound, refund and fail on the terminal ones).
"""

from __future__ import annotations

from shared.errors import AppError


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


class ProviderUnavailableError(ProviderError):
    """Network failure, timeout, 5xx or 429 after the retries ran out, or the circuit is open."""

    code = "PROVIDER_UNAVAILABLE"
    status = 503
    default_action = "Retry later; the provider is not answering."
    retryable = True


class RequestOutcomeUnknownError(ProviderUnavailableError):
    """The request may or may not have been carried out (timed out awaiting the answer, the
    connection dropped mid-answer, a gateway timeout, an unreadable success body).

    Raised without retrying by non-idempotent calls (create_voice). Still retryable for the
    caller once it has reconciled: list the voices and look for the name it asked for."""


class ProviderRejectedError(ProviderError):
    """A 4xx the provider will answer the same way again."""


class ProviderAuthError(ProviderRejectedError):
    """401 invalid_api_key: our configuration is wrong, not the user's request."""

    default_action = "An operator must check the provider API key."


class ProviderQuotaExceededError(ProviderRejectedError):
    """401 quota_exceeded: the provider account has no characters left."""

    default_action = "Retry later; the service's provider quota is used up for now."


class VoiceLimitReachedError(ProviderError):
    """400 voice_limit_reached: no free custom-voice slot at the provider."""

    code = "VOICE_LIMIT_REACHED"
    status = 503
    default_action = "Retry later; all voice slots are busy."


class VoiceNotFoundError(ProviderError):
    """400/404 voice_not_found: the remote voice is gone (evicted or deleted elsewhere)."""

    code = "VOICE_NOT_FOUND"
    status = 404
    default_action = "The voice will be re-created from your stored sample."
