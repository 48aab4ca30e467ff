"""Measurements that decide whether a voice sample is good enough to clone, and their report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shared.audio.vad import SpeechActivity

#: SNR quoted for a noise floor of digital silence; keeps the report finite (JSON has no inf)
MAX_SNR_DB = 100.0


@dataclass(frozen=True)
class QualityReport:
    """What we measured on an upload. Durations in seconds, levels in LUFS / dBTP / dB.

    Loudness is None when it cannot be measured (silence, or quieter than the -70 LUFS gate)."""

    duration_before_s: float
    duration_after_s: float
    speech_s: float
    speech_ratio: float  # speech_s / duration_before_s
    clipping_ratio: float  # share of speech samples sitting at the recording's ceiling
    snr_db: float
    loudness_before_lufs: float | None
    loudness_after_lufs: float | None
    true_peak_dbtp: float | None
    sample_rate: int
    format: str  # input container/codec as ffprobe names them, e.g. "mp3/mp3", "ogg/opus"
    #: 0-100, how alike the speaker embeddings of 1.6 s windows of the speech are (one voice
    #: scores about 85-90); None when the speech was not analysed (a sample refused earlier)
    speaker_consistency: float | None = None
    #: cosine between the two groups the windows split into: near 1 for one voice, under
    #: shared.audio.speaker.checks.MAX_SPLIT_COSINE for two
    speaker_split_cosine: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, numbers rounded to what is meaningful to a reader."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float):
                value = None if not math.isfinite(value) else round(value, 4 if key.endswith("_ratio") else 2)
            out[key] = value
        return out


def clipping_ratio(samples: np.ndarray, spans: np.ndarray, *, below_peak_db: float = 1.0,
                   min_run: int = 2) -> float:
    """Share of samples inside `spans` ((k, 2) [start, end) ranges) that sit within
    `below_peak_db` of the recording's peak, in runs of at least `min_run` samples.

    Why relative to the peak, not to full scale: a recording clipped and then encoded lossily
    (every phone recording) no longer has flat tops at 1.0. The codec rounds the plateaus into
    ripples ~0.5-1 dB under the peak, and recorders often scale after clipping. What survives
    is the pile-up of samples at the ceiling, whatever the ceiling is. Clean speech has a crest
    factor near 20 dB, so only a handful of samples come within 1 dB of its peak; the fixture
    clipped by +20 dB puts ~12 % there, as PCM or re-encoded as MP3."""
    if len(spans) == 0 or len(samples) == 0:
        return 0.0
    mag = np.abs(samples)
    peak = float(mag.max())
    if peak == 0.0:
        return 0.0
    hot = mag >= peak * 10.0 ** (-below_peak_db / 20.0)
    edges = np.diff(hot.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    run_start, run_end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_runs = (run_end - run_start) >= min_run
    # mark samples of long runs: +1 at each run start, -1 at its end, running sum (runs are
    # separated by at least one cool sample, so no position gets two marks)
    marks = np.zeros(len(samples) + 1, dtype=np.int32)
    marks[run_start[long_runs]] = 1
    marks[run_end[long_runs]] = -1
    clipped_csum = np.concatenate(([0], np.cumsum(np.cumsum(marks[:-1]))))
    inside = int((clipped_csum[spans[:, 1]] - clipped_csum[spans[:, 0]]).sum())
    total = int((spans[:, 1] - spans[:, 0]).sum())
    return inside / total if total else 0.0


def snr_db(activity: SpeechActivity) -> float:
    """Signal-to-noise estimate: mean power of speech frames against the tracked noise floor.

    The floor is read only between the first and last speech frame, so digital silence padded
    around a recording does not pass for a perfect noise floor; SNR = 10 log10((S - N) / N)
    removes the noise's own share from the speech frames."""
    speech = activity.speech
    if not speech.any():
        return 0.0
    idx = np.flatnonzero(speech)
    inner = slice(idx[0], idx[-1] + 1)
    signal_power = float(np.mean(10.0 ** (activity.frame_db[speech] / 10.0)))
    noise_power = float(10.0 ** (np.median(activity.floor_db[inner]) / 10.0))
    if signal_power <= noise_power:
        return 0.0
    return min(MAX_SNR_DB, 10.0 * math.log10((signal_power - noise_power) / noise_power))
