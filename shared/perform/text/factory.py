"""The configured text generator for voice notes (Gemini with a key, else the local composer),
built once per process and metered."""

from __future__ import annotations

import threading
import time

from shared import metrics
from shared.config import Settings
from shared.errors import ProviderError
from shared.providers.resilience import CircuitOpenError

_lock = threading.Lock()
_text: dict[tuple, object] = {}


def text_generator(settings: Settings):
    """The configured TextGenerator (Gemini with a key, else the local composer)."""
    from shared.perform.text.local import LocalTextGenerator

    if settings.effective_text_provider != "gemini":
        return LocalTextGenerator()
    key = ("gemini", settings.gemini_base_url, settings.gemini_model, settings.gemini_timeout_s)
    with _lock:
        generator = _text.get(key)
        if generator is None:
            from shared.perform.text.base import circuit_breaker
            from shared.perform.text.gemini import PROVIDER, GeminiTextGenerator

            api_key = settings.gemini_api_key.get_secret_value()
            if not api_key:
                raise RuntimeError("TEXT_PROVIDER=gemini needs GEMINI_API_KEY")
            generator = _text[key] = MeteredTextGenerator(GeminiTextGenerator(
                api_key, model=settings.gemini_model, base_url=settings.gemini_base_url or None,
                timeout_s=settings.gemini_timeout_s,
                breaker=circuit_breaker(PROVIDER, failure_threshold=settings.provider_breaker_threshold,
                                        reset_timeout_s=settings.provider_breaker_reset_s)))
        return generator


class MeteredTextGenerator:
    """Records each `generate` in provider_calls_total / provider_call_duration_seconds, since
    the Gemini adapter has no on_call hook. One logical call each: the SDK retries inside it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model

    def generate(self, prompt):
        started = time.monotonic()
        outcome = "error"  # anything that is not a ProviderError: a bug, reported as such
        try:
            result = self.inner.generate(prompt)
            outcome = "ok"
            return result
        except CircuitOpenError:
            outcome = "circuit_open"  # the same word the ElevenLabs adapter reports
            raise
        except ProviderError as exc:
            outcome = exc.provider_code or (f"http_{exc.http_status}" if exc.http_status else exc.code)
            raise
        finally:
            metrics.provider_call(self.name, "generate", outcome, time.monotonic() - started)

    def __getattr__(self, attr: str):
        return getattr(self.inner, attr)


def fallback_text_generator():
    from shared.perform.text.local import LocalTextGenerator

    return LocalTextGenerator()


def reset() -> None:
    with _lock:
        _text.clear()
