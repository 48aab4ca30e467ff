"""Build the configured provider adapters. One instance per process (they hold HTTP pools)."""

from __future__ import annotations

import threading
import time

from pymongo.database import Database

from shared import metrics
from shared.config import Settings
from shared.providers.errors import ProviderError
from shared.providers.resilience import CircuitOpenError
from shared.providers.voice.base import VoiceProvider

_lock = threading.Lock()
_voice: dict[tuple, VoiceProvider] = {}


def voice_provider(settings: Settings, db: Database) -> VoiceProvider:
    kind = settings.effective_voice_provider
    key = (kind, settings.eleven_labs_base_url, settings.eleven_labs_model, db.name, id(db.client))
    with _lock:
        provider = _voice.get(key)
        if provider is None:
            provider = _voice[key] = _build_voice(settings, db, kind)
        return provider


def _build_voice(settings: Settings, db: Database, kind: str) -> VoiceProvider:
    if kind == "elevenlabs":
        from shared.providers.voice.elevenlabs import ElevenLabsVoiceProvider, Timeouts, shared_breaker

        return ElevenLabsVoiceProvider(
            api_key=settings.eleven_labs_api_key.get_secret_value(),
            base_url=settings.eleven_labs_base_url,
            model_id=settings.eleven_labs_model,
            timeouts=Timeouts(synthesis_read_s=settings.eleven_labs_synthesis_timeout_s),
            breaker=shared_breaker(settings.eleven_labs_base_url,
                                   failure_threshold=settings.provider_breaker_threshold,
                                   reset_timeout_s=settings.provider_breaker_reset_s),
            on_call=metrics.provider_call_hook(ElevenLabsVoiceProvider.name),
        )
    from shared.providers.voice.local import LocalVoiceProvider

    return LocalVoiceProvider(db, voice_limit=settings.local_voice_limit)


_text: dict[tuple, object] = {}


def text_generator(settings: Settings):
    """The configured TextGenerator (Gemini with a key, else the local composer)."""
    from shared.providers.text.local import LocalTextGenerator

    if settings.effective_text_provider != "gemini":
        return LocalTextGenerator()
    key = ("gemini", settings.gemini_base_url, settings.gemini_model, settings.gemini_timeout_s)
    with _lock:
        generator = _text.get(key)
        if generator is None:
            from shared.providers.text.base import circuit_breaker
            from shared.providers.text.gemini import PROVIDER, GeminiTextGenerator

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
    from shared.providers.text.local import LocalTextGenerator

    return LocalTextGenerator()


def reset() -> None:
    with _lock:
        _voice.clear()
        _text.clear()
