"""Build the configured provider adapters. One instance per process (they hold HTTP pools)."""

from __future__ import annotations

import threading

from pymongo.database import Database

from shared import metrics
from shared.config import Settings
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


def reset() -> None:
    with _lock:
        _voice.clear()
