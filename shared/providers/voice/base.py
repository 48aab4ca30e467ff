"""The VoiceProvider port: what the domain needs from a text-to-speech provider.

Adapters (ElevenLabs over HTTP, the local espeak-ng stand-in) implement this protocol;
the domain never sees HTTP, multipart or provider error bodies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RemoteVoice:
    voice_id: str
    name: str
    category: str | None = None  # ElevenLabs: "cloned", "premade", "generated", ...
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VoiceSettings:
    stability: float = 0.5
    similarity_boost: float = 0.75
    style: float = 0.0
    use_speaker_boost: bool = True
    speed: float = 1.0  # the provider accepts 0.7-1.2


@dataclass(frozen=True)
class Synthesis:
    audio: bytes  # MP3 bytes
    model_id: str
    characters: int  # characters of text sent
    character_cost: int | None = None  # what the provider says it billed, when it says


@dataclass(frozen=True)
class Subscription:
    voice_limit: int
    voice_slots_used: int
    character_count: int
    character_limit: int


@runtime_checkable
class VoiceProvider(Protocol):
    name: str  # "elevenlabs" | "local"
    model_id: str

    def create_voice(self, name: str, sample_mp3: bytes, labels: dict[str, str] | None = None) -> str:
        """Create a cloned voice from an MP3 sample; return its voice_id.

        Raises VoiceLimitReached when the account has no free slot."""

    def rename_voice(self, voice_id: str, name: str) -> None: ...

    def delete_voice(self, voice_id: str) -> None:
        """Delete the voice. Raises VoiceNotFound when it does not exist."""

    def list_voices(self) -> Iterator[RemoteVoice]:
        """Every voice on the account, following pagination to the end."""

    def synthesize(self, text: str, voice_id: str, settings: VoiceSettings) -> Synthesis:
        """Speak `text` in the voice. Raises VoiceNotFound if the voice is gone."""

    def subscription(self) -> Subscription: ...
