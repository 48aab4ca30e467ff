"""Public shapes of a user's voice: the sample quality report, `GET /user/voice/meta` and the
result of a clone job."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from shared.jobs.model import JobError


class SampleQuality(BaseModel):
    """What was measured on the uploaded sample (`shared/audio/quality.py`). Durations in
    seconds, levels in LUFS / dBTP / dB; a loudness is null when it cannot be measured."""

    duration_before_s: float = Field(description="Length as uploaded.", examples=[49.1])
    duration_after_s: float = Field(description="Length after trimming silence and shortening pauses.", examples=[44.6])
    speech_s: float = Field(description="Seconds of detected speech.", examples=[41.2])
    speech_ratio: float = Field(description="`speech_s / duration_before_s`.", examples=[0.839])
    clipping_ratio: float = Field(description="Share of speech samples at the recording's ceiling.", examples=[0.0004])
    snr_db: float = Field(description="Speech power over the noise floor.", examples=[38.5])
    loudness_before_lufs: float | None = Field(description="Integrated loudness as uploaded.", examples=[-24.3])
    loudness_after_lufs: float | None = Field(description="Integrated loudness after normalizing (target -20).",
                                              examples=[-20.0])
    true_peak_dbtp: float | None = Field(description="True peak after normalizing (ceiling -3).", examples=[-3.4])
    sample_rate: int = Field(examples=[44100])
    format: str = Field(description="Container/codec as probed, e.g. `mp3/mp3`, `ogg/opus`.", examples=["mp3/mp3"])
    speaker_consistency: float | None = Field(None, description=(
        "0-100: how alike the speaker embeddings of short windows of the speech are (one voice scores "
        "about 85-90); null when the speech was not analysed."), examples=[88.4])
    speaker_split_cosine: float | None = Field(None, description=(
        "Cosine between the two groups the windows split into: near 1 for one voice, low for two "
        "(docs/VOICE_MATCH.md)."), examples=[0.97])


class VoiceMatch(BaseModel):
    """How much the clone sounds like its owner: a calibration phrase spoken by the new voice,
    scored against the cleaned sample (docs/VOICE_MATCH.md)."""

    score: int = Field(ge=0, le=100, description="0-100, calibrated on real pairs.", examples=[78])
    band: Literal["close", "fair", "far"] = Field(examples=["close"])
    cosine: float = Field(description="The raw speaker-embedding cosine the score maps from.", examples=[0.83])


class VoiceFlag(BaseModel):
    """A problem with the current voice the owner can fix."""

    code: Literal["VOICE_MATCH_LOW"]
    message: str
    action: str = Field(examples=["Record a new sample in a quiet room."])


class VoiceSample(BaseModel):
    """The clean sample the current voice was made from."""

    sha256: str | None = Field(description="Of the normalized sample: the same clean sample again is not re-cloned.")
    quality: SampleQuality | None
    format: str | None = Field(description="The uploaded file's container, as probed.", examples=["mp3"])
    saved_at: dt.datetime | None


class VoiceMeta(BaseModel):
    """Your voice and the sample behind it."""

    state: Literal["none", "pending", "ready", "failed", "evicted"] = Field(description=(
        "`none` before any sample, `pending` while a sample is processed, `ready` when notes can be "
        "performed, `failed` when the only sample was refused."))
    voice_clone_id: str | None = Field(description="The provider's id of your current voice.")
    voice_clone_previous_id: str | None = Field(description="The voice replaced by the last new sample, "
                                                            "deleted after a grace period.")
    sample: VoiceSample | None
    clone_job_id: str | None = Field(description="The clone job in progress, if any.")
    last_action: Literal["created", "updated", "update_skipped", "failed"] | None = Field(
        description="What the last clone job did.")
    last_error: JobError | None = Field(description="Why the last clone job failed, when it did.")
    voice_match: VoiceMatch | None = Field(None, description="The current voice's match; null before it is scored.")
    voice_flag: VoiceFlag | None = Field(None, description="Set when the match is under VOICE_MATCH_FLOOR.")


class CloneResult(BaseModel):
    """The `result` of a succeeded clone job."""

    action: Literal["created", "updated", "update_skipped"] = Field(description=(
        "`update_skipped`: the same clean sample as the current voice's; nothing was re-created."))
    voice_clone_id: str = Field(description="The voice now in use.")
    quality: SampleQuality
    sample_sha256: str
    voice_match: VoiceMatch | None = Field(None, description="The new voice's match; null when scoring failed.")
