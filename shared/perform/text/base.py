"""The TextGenerator port: what the perform pipeline needs from a text writer.

Adapters (Gemini through google-genai, the local template composer) implement this protocol;
the domain sees a prompt in and plain text out, never SDK objects or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shared.errors import ProviderRejected
from shared.providers.resilience import CircuitBreaker, shared_breaker

if TYPE_CHECKING:
    from shared.perform.prompt import VoiceNotePrompt


@dataclass(frozen=True)
class GeneratedText:
    text: str
    model: str
    provider: str  # "gemini" | "local"
    finish_reason: str | None = None  # provider's own reason, e.g. "STOP", "MAX_TOKENS"
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    @property
    def truncated(self) -> bool:
        """The writer stopped at its token limit: the note likely ends mid-sentence."""
        return self.finish_reason == "MAX_TOKENS"


class TextBlockedError(ProviderRejected):
    """The writer answered but gave no usable text: prompt blocked, output filtered by safety
    or recitation checks, or simply empty. Public code stays PROVIDER_REJECTED; `reason`
    holds the provider's word for it (e.g. "SAFETY", "RECITATION", "EMPTY")."""

    default_action = "Try a different topic, or try again."

    def __init__(self, message: str, *, reason: str, **kw) -> None:
        super().__init__(message, provider_code=reason, **kw)
        self.reason = reason


@runtime_checkable
class TextGenerator(Protocol):
    name: str  # "gemini" | "local"
    model: str

    def generate(self, prompt: VoiceNotePrompt) -> GeneratedText:
        """Write the note. Raises ProviderUnavailable (retries exhausted, circuit open),
        ProviderAuthError, TextBlockedError or another ProviderRejected."""


# ---------------------------------------------------------------- process-wide breakers


def circuit_breaker(name: str, *, failure_threshold: int = 5, reset_timeout_s: float = 30.0) -> CircuitBreaker:
    """The one breaker for text provider `name` in this process (see resilience.shared_breaker)."""
    return shared_breaker(name, failure_threshold=failure_threshold, reset_timeout_s=reset_timeout_s)
