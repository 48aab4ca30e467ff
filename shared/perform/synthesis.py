"""From text and settings to the provider's input: sentence chunks and voice settings."""

from __future__ import annotations

import re

from shared.perform.routines import Routine
from shared.providers.voice.base import VoiceSettings
from shared.users.schemas import UserSettings

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def split_for_synthesis(text: str, max_chars: int) -> list[str]:
    """Split on sentence boundaries into chunks of at most `max_chars` (a sentence longer than
    that is split on commas, then on spaces). Chunks keep their punctuation, so the voice keeps
    its intonation at every join."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    return _pack([piece for sentence in sentences for piece in _fit(sentence, max_chars)], max_chars)


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    return _pack(re.split(r"(?<=,)\s+|\s+", sentence), max_chars)


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    """Join consecutive pieces with spaces while the result stays within `max_chars` (a piece
    longer than that stands alone)."""
    packed: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > max_chars:
            packed.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    if current:
        packed.append(current)
    return packed


def voice_settings_for(user_settings: UserSettings, routine: Routine) -> VoiceSettings:
    """The user's stability and similarity, the routine's style and pace.

    Style adds expressiveness but costs stability on ElevenLabs, so it is damped for users who
    asked for a very stable voice."""
    style = routine.style * (1.0 - 0.5 * user_settings.stability)
    return VoiceSettings(
        stability=round(user_settings.stability, 3),
        similarity_boost=round(user_settings.voice_similarity, 3),
        style=round(min(1.0, max(0.0, style)), 3),
        use_speaker_boost=True,
        speed=round(min(1.2, max(0.7, routine.speed)), 3),
    )
