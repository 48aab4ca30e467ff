"""Public shapes of routines and of a perform job's result."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.voices.schemas import VoiceMatch


class TargetWords(BaseModel):
    min: int = Field(examples=[60])
    max: int = Field(examples=[110])


class RoutineText(BaseModel):
    title: str = Field(examples=["Morning motivation"])
    description: str


class Routine(BaseModel):
    """A kind of voice note you can ask for."""

    type: str = Field(description="Send as `routine_type` to POST /perform.", examples=["morning_motivation"])
    style: float = Field(description="Speaking style, 0 (calm) to 1 (expressive).", examples=[0.6])
    speed: float = Field(description="Speaking rate, 0.7 to 1.2.", examples=[1.0])
    target_words: TargetWords
    languages: dict[str, RoutineText] = Field(description="Title and description per language (`english`, `spanish`).")
    title: str | None = Field(None, description="In the `language` asked for; sent only when one was.")
    description: str | None = Field(None, description="In the `language` asked for; sent only when one was.")


class RoutineList(BaseModel):
    routines: list[Routine]


class NoteChars(BaseModel):
    raw: int = Field(description="Characters of text spoken.")
    effective: int = Field(description="Characters charged.")
    provider_cost: int | None = Field(description="What the provider reported charging, when it does.")


class PerformResult(BaseModel):
    """The `result` of a succeeded perform job: the note and what it cost."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "recording_id": "665f1c2e8a4b2c0012345678", "audio_url": "/recordings/665f1c2e8a4b2c0012345678/audio",
        "duration_s": 42.5, "title": "Morning motivation", "text": "Good morning ...",
        "chars": {"raw": 512, "effective": 256, "provider_cost": None}, "charCount": 1240,
        "monthlyLimit": 10000, "charsUsedRaw": 1752, "charsUsedEffective": 1240, "voice_id": "v-123",
        "rewarmed": False, "model": "eleven_flash_v2_5", "text_provider": "local", "fell_back": False}]})

    recording_id: str = Field(description="GET /recordings/{recording_id} for the note.")
    audio_url: str = Field(description="Where to download the MP3.")
    duration_s: float
    title: str
    text: str = Field(description="What was spoken.")
    chars: NoteChars
    charCount: int = Field(description="Effective characters charged this month, this note included.")
    monthlyLimit: int
    charsUsedRaw: int
    charsUsedEffective: int
    voice_id: str = Field(description="The provider voice that spoke it.")
    rewarmed: bool = Field(description="The voice had been evicted from the provider and was re-created.")
    model: str = Field(description="The voice model.")
    text_provider: str = Field(description="Who wrote the text: `gemini` or `local`.")
    fell_back: bool = Field(description="The configured writer failed and the local composer wrote it.")
    voice_match: VoiceMatch | None = Field(None, description=(
        "How much the note's voice sounds like its owner's sample; null when not scored."))
