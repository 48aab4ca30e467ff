"""Public shapes of voice notes (recordings)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from shared.voices.schemas import VoiceMatch


class Recording(BaseModel):
    """One voice note. Every field is sent; those a note may lack are null."""

    id: str = Field(examples=["665f1c2e8a4b2c0012345678"])
    title: str | None = Field(description="The user's `voice_note_name`, or the routine's title.",
                              examples=["Morning motivation"])
    date: dt.date | None = Field(description="The user's `voice_note_date`, or the day it was made.")
    routine_type: str | None = Field(examples=["morning_motivation"])
    topic: str | None = Field(examples=["my first 10k on Sunday"])
    duration_s: float | None = Field(examples=[42.5])
    size: int | None = Field(description="Bytes of MP3.", examples=[681234])
    voice_id: str | None = Field(description="The provider voice that spoke it.")
    chars_raw: int | None = Field(description="Characters of text spoken.")
    chars_effective: int | None = Field(description="Characters charged (raw x the model's cost factor).")
    model: str | None = Field(description="The voice model.")
    provider: str | None = Field(description="The voice provider.")
    text: str | None = Field(description="The text that was spoken.")
    loudness_lufs: float | None = Field(description="Integrated loudness of the MP3 (target -16).")
    voice_match: VoiceMatch | None = Field(None, description=(
        "How much the note's voice sounds like its owner's sample; null when not scored."))
    job_id: str | None = Field(description="The perform job that made it.")
    created_at: dt.datetime | None
    audio_url: str = Field(description="Where to download the MP3 (supports Range).",
                           examples=["/recordings/665f1c2e8a4b2c0012345678/audio"])


class RecordingPage(BaseModel):
    """A page of your voice notes, newest first."""

    items: list[Recording]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    total: int = Field(description="How many voice notes you have in all.")
