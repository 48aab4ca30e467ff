"""A speaker's coarse vocal traits, measured from a recording: pitch, pitch spread, pace.

Used by the local voice provider to shape a generic synthetic voice towards the person who
recorded the sample (a lower voice speaks lower, a quick talker speaks quicker). It is not a
speaker embedding and identifies nobody; three numbers are all a formant synthesizer can use.

Pitch (F0) is tracked with YIN (de Cheveigné & Kawahara 2002) on 40 ms frames every 10 ms,
searched between 60 and 400 Hz, which covers adult and most child speech. Everything is computed
with whole-array numpy: the difference function of every frame comes from one batched FFT
cross-correlation plus cumulative sums of energy, so three minutes of audio take well under a
second. A frame is voiced when its cumulative-mean-normalised difference dips below
`VOICING_THRESHOLD` (it is periodic) *and* it is loud enough relative to the recording's speech
level (YIN happily finds "periods" in quiet hum or reverb tails).

The speaker's pitch is the median F0 over voiced frames (robust to the octave errors any
tracker makes on creaky or breathy frames); the spread is the standard deviation in semitones
around it, after dropping frames more than an octave away (those are tracking errors, not
intonation).

Pace is an articulation rate in the spirit of de Jong & Wempe (2009): syllable nuclei are peaks
of a smoothed vowel-band (250-2500 Hz) energy envelope that stand out by `PEAK_PROMINENCE_DB`
from their surroundings, are at most `PEAK_BELOW_LEVEL_DB` under the speech level, are at least
`MIN_SYLLABLE_GAP_S` apart, and are voiced (fricatives and bursts make energy peaks too, but no
pitch). Their count is divided by the duration of speech, where pauses longer than
`MAX_INTRA_PHRASE_GAP_S` do not count, so a slow talker with long pauses is not confused with a
slow articulator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage, signal

#: everything is analysed at this rate; plenty for F0 up to 400 Hz and a vowel-band envelope
ANALYSIS_SR = 16_000
FRAME_S = 0.040
HOP_S = 0.010
F0_MIN_HZ = 60.0
F0_MAX_HZ = 400.0
#: YIN absolute threshold on the cumulative-mean-normalised difference: below it a lag counts
#: as a period. 0.15 is the paper's value range (0.1-0.2); MP3 and room noise push real speech
#: up a little, so a little more lenient than the paper's 0.1.
VOICING_THRESHOLD = 0.20
#: a voiced frame must be within this many dB of the speech level (95th percentile frame energy)
VOICED_BELOW_LEVEL_DB = 35.0
#: and louder than this absolute level; digital near-silence has no pitch worth measuring
ABSOLUTE_FLOOR_DBFS = -65.0
SPEECH_PERCENTILE = 95.0
#: frames further than this from the median are octave errors, left out of the spread
OUTLIER_SEMITONES = 12.0

ENVELOPE_BAND_HZ = (250.0, 2500.0)
ENVELOPE_WINDOW_S = 0.020
#: power-domain smoothing of the envelope before peak picking: joins the ripples inside a vowel,
#: still resolves syllables at 8 per second (125 ms apart)
ENVELOPE_SMOOTH_S = 0.050
PEAK_PROMINENCE_DB = 3.0
PEAK_BELOW_LEVEL_DB = 25.0
MIN_SYLLABLE_GAP_S = 0.100
#: frames within this much of a voiced frame count as voiced, for the nucleus check
VOICED_NEIGHBOURHOOD_S = 0.030
#: energy gate for "speech" time, below the speech level
SPEECH_BELOW_LEVEL_DB = 30.0
#: silences shorter than this inside speech (stop closures, between words) are speech time
MAX_INTRA_PHRASE_GAP_S = 0.250
#: fewer voiced frames than this (in seconds) and there is no pitch to report
MIN_VOICED_S = 0.10
#: less speech than this and a rate is noise
MIN_SPEECH_FOR_RATE_S = 0.5

_FRAMES_PER_CHUNK = 2048  # bounds memory: 2048 frames x 1024-point FFT ~ 16 MB complex


@dataclass(frozen=True)
class Voiceprint:
    """Measured traits of one speaker. Fields are None when the recording holds too little
    voiced speech to measure them; `speech_s` is the speech time they were measured over."""

    f0_hz: float | None
    f0_semitone_std: float | None
    syllables_per_s: float | None
    speech_s: float

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Voiceprint:
        """Tolerant of missing keys (records stored by an older version) and extra ones."""
        data = data or {}

        def num(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            value = float(value)
            return value if math.isfinite(value) else None

        return cls(
            f0_hz=num("f0_hz"),
            f0_semitone_std=num("f0_semitone_std"),
            syllables_per_s=num("syllables_per_s"),
            speech_s=num("speech_s") or 0.0,
        )


@dataclass(frozen=True)
class PitchTrack:
    """Per-frame analysis, frames every `hop_s` seconds; frame i is centred at i*hop_s + FRAME_S/2."""

    hop_s: float
    f0_hz: np.ndarray  # NaN where unvoiced
    aperiodicity: np.ndarray  # YIN's normalised difference at the chosen lag (0 = perfectly periodic)
    energy_db: np.ndarray  # 20 ms vowel-band energy around each frame centre, dBFS, smoothed

    @property
    def voiced(self) -> np.ndarray:
        return np.isfinite(self.f0_hz)


def _to_analysis_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64).ravel()
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if sample_rate != ANALYSIS_SR:
        g = math.gcd(int(sample_rate), ANALYSIS_SR)
        x = signal.resample_poly(x, ANALYSIS_SR // g, int(sample_rate) // g)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _yin(x: np.ndarray, n_frames: int, hop: int, width: int, tau_min: int, tau_max: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Best lag (fractional, samples; NaN when no lag passes the threshold) and its normalised
    difference for `n_frames` frames of `width` samples starting every `hop` samples."""
    span = width + tau_max
    # the last frames look tau_max samples past the end of the signal: pad with silence
    padded = np.concatenate((x, np.zeros(max(0, (n_frames - 1) * hop + span - len(x)))))
    frames_all = sliding_window_view(padded, span)[::hop][:n_frames]
    nfft = 1 << int(math.ceil(math.log2(span)))  # circular correlation exact for lags <= tau_max
    taus = np.arange(tau_max + 1)

    best_lag = np.full(n_frames, np.nan)
    best_ap = np.ones(n_frames)
    for start in range(0, n_frames, _FRAMES_PER_CHUNK):
        frames = np.array(frames_all[start:start + _FRAMES_PER_CHUNK])  # copy of a strided view
        head = frames[:, :width]
        # r(tau) = sum_j head[j] * frame[j + tau], for every frame at once
        cross = np.fft.irfft(np.conj(np.fft.rfft(head, nfft)) * np.fft.rfft(frames, nfft), nfft)[:, : tau_max + 1]
        csum = np.concatenate((np.zeros((len(frames), 1)), np.cumsum(frames * frames, axis=1)), axis=1)
        energy_head = csum[:, width:width + 1]
        energy_lagged = csum[:, taus + width] - csum[:, taus]
        diff = np.maximum(energy_head + energy_lagged - 2.0 * cross, 0.0)

        # cumulative mean normalised difference: d'(tau) = d(tau) * tau / sum_{1..tau} d
        running = np.cumsum(diff[:, 1:], axis=1)
        cmnd = np.ones_like(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            cmnd[:, 1:] = np.where(running > 0, diff[:, 1:] * taus[1:] / running, 1.0)

        search = cmnd[:, tau_min:tau_max + 1]
        below = search < VOICING_THRESHOLD
        has_period = below.any(axis=1)
        first = np.argmax(below, axis=1)
        # from the first lag under the threshold, follow the dip down to its bottom: the first
        # lag at or after it whose right neighbour is not lower. Taking the *first* dip (not the
        # global minimum) is what keeps YIN off subharmonics (2T, 3T also dip low).
        cols = np.arange(search.shape[1])
        rising = np.concatenate((search[:, 1:] >= search[:, :-1], np.ones((len(search), 1), bool)), axis=1)
        bottom = np.argmax(rising & (cols[None, :] >= first[:, None]), axis=1)

        rows = np.arange(len(search))
        lag = (bottom + tau_min).astype(np.float64)
        # parabolic interpolation of the dip for sub-sample lags (matters at high F0: 400 Hz is
        # a 40-sample period, one sample is 2.5 %)
        inner = (bottom > 0) & (bottom < search.shape[1] - 1)
        left = search[rows, np.clip(bottom - 1, 0, None)]
        mid = search[rows, bottom]
        right = search[rows, np.clip(bottom + 1, None, search.shape[1] - 1)]
        denom = left - 2.0 * mid + right
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(inner & (denom > 0), 0.5 * (left - right) / denom, 0.0)
        lag += np.clip(shift, -0.5, 0.5)

        chunk = slice(start, start + len(frames))
        best_lag[chunk] = np.where(has_period, lag, np.nan)
        best_ap[chunk] = np.where(has_period, mid, search.min(axis=1))
    return best_lag, best_ap


def _band_envelope_db(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Vowel-band energy (dBFS) of 20 ms windows around `centres`, smoothed over ~50 ms."""
    sos = signal.butter(4, ENVELOPE_BAND_HZ, btype="bandpass", fs=ANALYSIS_SR, output="sos")
    band = signal.sosfilt(sos, x)
    half = max(1, round(ENVELOPE_WINDOW_S * ANALYSIS_SR / 2))
    csum = np.concatenate(([0.0], np.cumsum(band * band)))
    lo = np.clip(centres - half, 0, len(band))
    hi = np.clip(centres + half, 0, len(band))
    power = (csum[hi] - csum[lo]) / (2 * half)
    smooth = max(1, round(ENVELOPE_SMOOTH_S / HOP_S))
    power = ndimage.uniform_filter1d(power, smooth, mode="nearest")
    # a full-scale sine in the band reads about -3 dBFS, like shared.audio.vad
    return 10.0 * np.log10(np.maximum(power, 1e-14))


def track_pitch(samples: np.ndarray, sample_rate: int) -> PitchTrack:
    """Frame-by-frame F0 (NaN when unvoiced) and vowel-band energy of float mono PCM."""
    x = _to_analysis_rate(samples, sample_rate)
    hop = round(HOP_S * ANALYSIS_SR)
    width = round(FRAME_S * ANALYSIS_SR)
    tau_min = int(math.floor(ANALYSIS_SR / F0_MAX_HZ))
    tau_max = int(math.ceil(ANALYSIS_SR / F0_MIN_HZ))
    n_frames = max(0, (len(x) - width) // hop + 1)
    if n_frames == 0:
        empty = np.empty(0)
        return PitchTrack(HOP_S, empty, empty, empty)

    # the pitch tracker sees 50-1000 Hz: DC, rumble and hum below, and above it the formants
    # that otherwise pull YIN towards a harmonic close to F1
    sos = signal.butter(4, (50.0, 1000.0), btype="bandpass", fs=ANALYSIS_SR, output="sos")
    lag, aperiodicity = _yin(signal.sosfilt(sos, x), n_frames, hop, width, tau_min, tau_max)

    centres = np.arange(n_frames) * hop + width // 2
    energy_db = _band_envelope_db(x, centres)
    level = float(np.percentile(energy_db, SPEECH_PERCENTILE))
    loud = (energy_db > level - VOICED_BELOW_LEVEL_DB) & (energy_db > ABSOLUTE_FLOOR_DBFS)
    with np.errstate(divide="ignore", invalid="ignore"):
        f0 = np.where(loud & np.isfinite(lag), ANALYSIS_SR / lag, np.nan)
    f0[(f0 < F0_MIN_HZ * 0.97) | (f0 > F0_MAX_HZ * 1.03)] = np.nan
    return PitchTrack(HOP_S, f0, aperiodicity, energy_db)


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill False runs of at most `max_gap` frames lying between True frames."""
    if max_gap <= 0 or not mask.any():
        return mask
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = mask.copy()
    for gap_start, gap_end in zip(ends[:-1], starts[1:]):  # one iteration per pause
        if gap_end - gap_start <= max_gap:
            out[gap_start:gap_end] = True
    return out


def measure_voiceprint(samples: np.ndarray, sample_rate: int) -> Voiceprint:
    """Median F0, F0 spread (semitones) and articulation rate of a speech recording."""
    track = track_pitch(samples, sample_rate)
    if track.f0_hz.size == 0:
        return Voiceprint(None, None, None, 0.0)

    voiced = track.voiced
    f0_hz = spread = None
    if voiced.sum() * HOP_S >= MIN_VOICED_S:
        values = track.f0_hz[voiced]
        f0_hz = float(np.median(values))
        semitones = 12.0 * np.log2(values / f0_hz)
        semitones = semitones[np.abs(semitones) <= OUTLIER_SEMITONES]
        spread = float(np.std(semitones)) if semitones.size > 1 else 0.0

    env = track.energy_db
    level = float(np.percentile(env, SPEECH_PERCENTILE))
    speaking = (env > level - SPEECH_BELOW_LEVEL_DB) & (env > ABSOLUTE_FLOOR_DBFS)
    speaking = _close_gaps(speaking, round(MAX_INTRA_PHRASE_GAP_S / HOP_S))
    speech_s = float(speaking.sum() * HOP_S)

    rate = None
    if speech_s >= MIN_SPEECH_FOR_RATE_S:
        peaks, _ = signal.find_peaks(env, prominence=PEAK_PROMINENCE_DB,
                                     distance=max(1, round(MIN_SYLLABLE_GAP_S / HOP_S)),
                                     height=max(level - PEAK_BELOW_LEVEL_DB, ABSOLUTE_FLOOR_DBFS))
        reach = round(VOICED_NEIGHBOURHOOD_S / HOP_S)
        near_voiced = ndimage.maximum_filter1d(voiced.astype(np.uint8), 2 * reach + 1) > 0
        nuclei = peaks[near_voiced[peaks]]
        rate = float(len(nuclei) / speech_s)
    return Voiceprint(f0_hz=f0_hz, f0_semitone_std=spread, syllables_per_s=rate, speech_s=speech_s)
