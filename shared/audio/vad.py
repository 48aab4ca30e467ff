"""Energy-based voice activity detection with an adaptive noise floor.

Made for one person reading into a phone or laptop: a steady background (room tone, hiss, a fan)
and speech well above it. Everything is computed on short-frame energies with whole-array
numpy/scipy operations, so an hour of audio costs milliseconds.

1. Energy of 20 ms frames every 10 ms, after an 80 Hz high-pass: handling noise, desk thumps
   and mains hum sit below the voice band and would otherwise hold the floor up.
2. Noise floor, tracked over time (minimum statistics, Martin 2001 in spirit): the minimum of
   the lightly smoothed energy over a window longer than a run of words, taken both behind
   and ahead of each frame (the larger wins, so a step in the background is followed at once).
   It follows a background that changes (a fan switched on) without any tuning per file.
3. Hysteresis: a region of frames above floor + `low_db` counts as speech only if it reaches
   floor + `high_db` somewhere; soft word endings stay attached to their word while breaths and
   noise bumps that never get loud are left out. Regions shorter than `min_burst_ms` (clicks,
   lip smacks, a tapped microphone) are dropped.
4. Both thresholds are also held at least `range_db` below the speech level (a high percentile
   of frame energy), so digital silence (floor at -inf) does not make every bit of hiss "speech".

Hangover (padding kept around speech so consonants at word edges are not cut) is applied by the
callers that cut audio, from `SpeechActivity.regions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

#: energy floor for digital silence, in dBFS; keeps logs finite
SILENCE_DB = -120.0


@dataclass(frozen=True)
class VadConfig:
    frame_ms: float = 20.0
    hop_ms: float = 10.0
    highpass_hz: float = 80.0
    #: sliding window of the minimum tracker; longer than a breath group of speech (~2-3 s)
    floor_window_s: float = 3.0
    #: a region must reach this far above the floor somewhere to be speech ...
    high_db: float = 12.0
    #: ... and extends while it stays this far above it
    low_db: float = 6.0
    #: thresholds never sit further than this below the speech level
    range_db: float = 45.0
    #: percentile of frame energy taken as "the speech level"
    speech_percentile: float = 95.0
    min_burst_ms: float = 50.0


@dataclass(frozen=True)
class SpeechActivity:
    """Result of `detect_speech`. Frame arrays are indexed by hop; regions are in samples."""

    sample_rate: int
    n_samples: int
    hop: int
    frame_db: np.ndarray  # frame energy, dBFS (high-passed)
    floor_db: np.ndarray  # tracked noise floor, dBFS
    speech: np.ndarray  # bool per frame
    regions: np.ndarray  # (k, 2) int64 [start, end) sample ranges of speech, in time order

    def padded_regions(self, before_s: float, after_s: float) -> np.ndarray:
        """Regions widened by `before_s` / `after_s` (clamped to the signal) and merged where
        they overlap: the stretches to keep so word edges survive."""
        if len(self.regions) == 0:
            return self.regions
        starts = np.maximum(self.regions[:, 0] - round(before_s * self.sample_rate), 0)
        ends = np.minimum(self.regions[:, 1] + round(after_s * self.sample_rate), self.n_samples)
        # merge: a new run starts where the start passes every end seen so far
        new_run = np.concatenate(([True], starts[1:] > np.maximum.accumulate(ends)[:-1]))
        run_id = np.cumsum(new_run) - 1
        merged_ends = np.zeros(run_id[-1] + 1, dtype=np.int64)
        np.maximum.at(merged_ends, run_id, ends)
        return np.column_stack((starts[new_run], merged_ends))

    def speech_seconds(self, hangover_s: float) -> float:
        """Active speech time, counting `hangover_s` after each region as ITU-T P.56 does."""
        spans = self.padded_regions(0.0, hangover_s)
        return float((spans[:, 1] - spans[:, 0]).sum()) / self.sample_rate


def frame_energy_db(samples: np.ndarray, sample_rate: int, frame_ms: float = 20.0,
                    hop_ms: float = 10.0) -> tuple[np.ndarray, int]:
    """Mean-square energy in dBFS of frames of `frame_ms` every `hop_ms`, and the hop in samples.

    Frames are built from hop-sized sub-frames (a reshape, no copies per frame); frame i
    covers samples [i*hop, i*hop + frame). A full-scale sine reads -3 dBFS."""
    hop = max(1, round(hop_ms * 1e-3 * sample_rate))
    per_frame = max(1, round(frame_ms / hop_ms))
    n_sub = len(samples) // hop
    if n_sub == 0:
        return np.empty(0), hop
    x = np.asarray(samples[: n_sub * hop], dtype=np.float64).reshape(n_sub, hop)
    sub = np.einsum("ij,ij->i", x, x)  # sum of squares per sub-frame
    if per_frame > 1:
        csum = np.concatenate(([0.0], np.cumsum(sub)))
        idx = np.minimum(np.arange(n_sub) + per_frame, n_sub)
        counts = (idx - np.arange(n_sub)) * hop
        energy = (csum[idx] - csum[:-1]) / counts
    else:
        energy = sub / hop
    return np.maximum(10.0 * np.log10(np.maximum(energy, 1e-30)), SILENCE_DB), hop


def _runs(mask: np.ndarray) -> np.ndarray:
    """(k, 2) [start, end) index ranges of the True runs of a boolean array."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def detect_speech(samples: np.ndarray, sample_rate: int, config: VadConfig = VadConfig()) -> SpeechActivity:
    cfg = config
    sos = signal.butter(2, cfg.highpass_hz, btype="highpass", fs=sample_rate, output="sos")
    filtered = signal.sosfilt(sos, np.asarray(samples, dtype=np.float64))
    frame_db, hop = frame_energy_db(filtered, sample_rate, cfg.frame_ms, cfg.hop_ms)
    empty = np.zeros((0, 2), dtype=np.int64)
    if frame_db.size == 0:
        return SpeechActivity(sample_rate, len(samples), hop, frame_db, frame_db.copy(), np.zeros(0, bool), empty)

    frames_per_s = 1000.0 / cfg.hop_ms
    window = max(3, int(cfg.floor_window_s * frames_per_s))
    # smooth over ~50 ms before taking minima, so a single quiet frame inside a word (a stop
    # closure) is not mistaken for the floor; average in the power domain.
    power = 10.0 ** (frame_db / 10.0)
    smoothed = 10.0 * np.log10(np.maximum(ndimage.uniform_filter1d(power, 5, mode="nearest"), 1e-30))
    # minimum over the window behind and the window ahead, keeping the larger: when the
    # background steps up (or down) the side that lies wholly in the new background wins, so
    # the floor jumps with it instead of lagging half a window and calling the new noise speech
    window |= 1
    behind = ndimage.minimum_filter1d(smoothed, window, mode="nearest", origin=window // 2)
    ahead = ndimage.minimum_filter1d(smoothed, window, mode="nearest", origin=-(window // 2))
    floor = ndimage.uniform_filter1d(np.maximum(behind, ahead), max(1, int(0.3 * frames_per_s)), mode="nearest")

    speech_level = float(np.percentile(frame_db, cfg.speech_percentile))
    base = np.maximum(floor, speech_level - cfg.range_db)
    low = frame_db > base + cfg.low_db
    high = frame_db > base + cfg.high_db

    candidates = _runs(low)
    if len(candidates):
        # keep runs that touch a "high" frame: count high frames per run via a cumulative sum
        high_csum = np.concatenate(([0], np.cumsum(high)))
        touches_high = high_csum[candidates[:, 1]] > high_csum[candidates[:, 0]]
        long_enough = (candidates[:, 1] - candidates[:, 0]) * cfg.hop_ms >= cfg.min_burst_ms
        candidates = candidates[touches_high & long_enough]
    # runs are separated by at least one frame, so no index is both a start and an end
    marks = np.zeros(len(frame_db) + 1, dtype=np.int8)
    marks[candidates[:, 0]] = 1
    marks[candidates[:, 1]] = -1
    speech = np.cumsum(marks[:-1]) > 0

    frame_len = max(1, round(cfg.frame_ms / cfg.hop_ms)) * hop
    regions = candidates.astype(np.int64) * hop
    if len(regions):
        # a frame starting at i*hop spans a full frame length; end at the last active frame's end
        regions[:, 1] = np.minimum((candidates[:, 1] - 1) * hop + frame_len, len(samples))
    return SpeechActivity(sample_rate, len(samples), hop, frame_db, floor, speech,
                          regions if len(regions) else empty)


def audible_span(samples: np.ndarray, sample_rate: int, below_peak_db: float = 45.0,
                 margin_ms: float = 30.0) -> tuple[int, int]:
    """[start, end) sample range from the first to the last frame within `below_peak_db` of the
    loudest frame, widened by `margin_ms`. A light trim for clean synthesized speech, where the
    adaptive machinery of `detect_speech` is not needed; (0, 0) for silence."""
    frame_db, hop = frame_energy_db(samples, sample_rate, frame_ms=10.0, hop_ms=5.0)
    if frame_db.size == 0 or frame_db.max() <= SILENCE_DB:
        return 0, 0
    loud = np.flatnonzero(frame_db > frame_db.max() - below_peak_db)
    margin = round(margin_ms * 1e-3 * sample_rate)
    start = max(0, int(loud[0]) * hop - margin)
    end = min(len(samples), (int(loud[-1]) + 2) * hop + margin)
    return start, end
