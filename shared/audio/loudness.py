"""Loudness and peak measurement after ITU-R BS.1770-4 (mono).

* Integrated loudness: K-weighting (high shelf + RLB high-pass, coefficients derived for any
  sample rate the way libebur128 does, exact at 48 kHz), mean square over 400 ms blocks with
  75 % overlap, absolute gate at -70 LKFS, relative gate 10 LU below the absolutely-gated level.
  Everything is whole-array numpy/scipy: one `sosfilt` pass and one cumulative sum.
* True peak: the 4x polyphase interpolator of BS.1770-4 Annex 2 (48 taps, 4 phases x 12). The
  interpolated value can only beat a threshold where some input sample in its 12-sample window
  comes within the filter's worst-case gain of it, so only those windows are interpolated; the
  result is identical to oversampling everything, at a fraction of the cost.

Mono only: every signal in this service is mono, and a single channel has weight 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S = 0.400
STEP_S = 0.100  # 75 % overlap

#: BS.1770-4 Annex 2 interpolation filter, one row per phase (12 taps each).
_TRUE_PEAK_PHASES = np.array([
    [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
     0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500],
    [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
     0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375],
    [-0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
     0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875],
    [-0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
     0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750],
])
_TAPS = _TRUE_PEAK_PHASES.shape[1]
#: worst-case gain of any phase: |interpolated| <= this x the largest |sample| in its window
_TRUE_PEAK_MAX_GAIN = float(np.abs(_TRUE_PEAK_PHASES).sum(axis=1).max())
#: output n of phase p reads x[n-11..n]; its centre lies ~6 samples back (group delay 23.5/4)
TRUE_PEAK_DELAY = 6
#: above this share of candidate samples, interpolating everything is cheaper than gathering
_DENSE_CANDIDATES = 0.15
_GATHER_BLOCK = 1 << 16


def db_to_amp(db: float) -> float:
    return 10.0 ** (db / 20.0)


def amp_to_db(amp: float) -> float:
    return 20.0 * math.log10(amp) if amp > 0 else -math.inf


@lru_cache(maxsize=8)
def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections of the K-weighting filter at `sample_rate`.

    The two analogue prototypes (a +4 dB shelf around 1.7 kHz modelling the head, and the RLB
    high-pass at 38 Hz) are re-derived for the rate through the bilinear transform, the way
    libebur128 does; at 48 kHz this reproduces the coefficients printed in BS.1770-4."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def sub_block_energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sum of squares of the K-weighted signal over each 100 ms step: the sub-blocks that
    four at a time make a 400 ms gating block. A stretch of a longer signal that starts on a
    step boundary has the same sub-blocks (bar the filter's few-ms start-up), which is what
    lets a noise bed be measured once and sliced (shared/audio/bed.py)."""
    step = round(STEP_S * sample_rate)
    n_sub = len(samples) // step
    if n_sub == 0:
        return np.empty(0)
    x = np.asarray(samples[: n_sub * step], dtype=np.float64)
    weighted = signal.sosfilt(k_weighting_sos(sample_rate), x)
    return np.einsum("ij,ij->i", weighted.reshape(n_sub, step), weighted.reshape(n_sub, step))


def blocks_of(sub: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square over each 400 ms gating block (100 ms step) from `sub_block_energies`;
    empty when there are fewer sub-blocks than one block. One cumulative sum, not a sum per
    block."""
    step = round(STEP_S * sample_rate)
    per_block = round(BLOCK_S / STEP_S)
    if len(sub) < per_block:
        return np.empty(0)
    csum = np.concatenate(([0.0], np.cumsum(sub)))
    return (csum[per_block:] - csum[:-per_block]) / (per_block * step)


def block_energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square of the K-weighted signal over each 400 ms gating block (100 ms step).

    Empty when the signal is shorter than one block."""
    return blocks_of(sub_block_energies(samples, sample_rate), sample_rate)


def _loudness(mean_square: np.ndarray | float) -> np.ndarray | float:
    return -0.691 + 10.0 * np.log10(np.maximum(mean_square, 1e-30))


def gated_loudness(z: np.ndarray, *, absolute_gate: bool = True) -> float | None:
    """Integrated loudness in LUFS of gating-block energies (`block_energies`): the absolute
    and relative gates of BS.1770-4. None when no block clears the absolute gate."""
    if absolute_gate:
        z = z[_loudness(z) > ABSOLUTE_GATE_LUFS]
    if z.size == 0:
        return None
    relative_gate = _loudness(z.mean()) + RELATIVE_GATE_LU
    z = z[_loudness(z) > relative_gate]
    return float(_loudness(z.mean()))


def integrated_loudness(samples: np.ndarray, sample_rate: int, *, absolute_gate: bool = True) -> float | None:
    """Gated integrated loudness in LUFS (BS.1770-4), or None when the signal is under 400 ms
    or no block clears the absolute gate (digital silence, anything quieter than -70 LUFS).

    `absolute_gate=False` keeps only the relative gate: a reading for signals below -70 LUFS,
    used to tell a user how quiet a recording is; not a BS.1770 measurement."""
    return gated_loudness(block_energies(samples, sample_rate), absolute_gate=absolute_gate)


def _interpolated_peaks(samples: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions (output index n, see TRUE_PEAK_DELAY) and magnitudes of the interpolated
    values that may exceed `threshold`; values that provably cannot are skipped.

    Output n of phase p is sum_k h_p[k] x[n-k], k = 0..11, so it can only reach `threshold`
    if some |x| in its window reaches threshold / max_p sum_k |h_p[k]|. Speech has few such
    windows (a few % of samples even at -16 LUFS); a clipped or heavily limited signal has
    many, and then four plain convolutions beat gathering windows."""
    x = np.asarray(samples, dtype=np.float32)
    n_out = len(x) + _TAPS - 1  # every output whose window touches a real sample
    loud = np.flatnonzero(np.abs(x) >= threshold / _TRUE_PEAK_MAX_GAIN)
    if loud.size == 0:
        return loud, np.empty(0)
    if loud.size > _DENSE_CANDIDATES * len(x):
        x64 = x.astype(np.float64)
        values = np.abs(np.convolve(x64, _TRUE_PEAK_PHASES[0]))
        for phase in _TRUE_PEAK_PHASES[1:]:
            np.maximum(values, np.abs(np.convolve(x64, phase)), out=values)
        return np.arange(n_out), values
    mask = np.zeros(n_out, dtype=bool)
    for lag in range(_TAPS):  # sample i feeds outputs i .. i+11
        mask[loud + lag] = True
    ends = np.flatnonzero(mask)
    padded = np.concatenate((np.zeros(_TAPS - 1, np.float32), x, np.zeros(_TAPS - 1, np.float32)))
    values = np.empty(len(ends))
    taps_back = np.arange(_TAPS)[None, :]
    for start in range(0, len(ends), _GATHER_BLOCK):  # bounded memory: 64k windows at a time
        block = ends[start:start + _GATHER_BLOCK] + (_TAPS - 1)
        windows = padded[block[:, None] - taps_back].astype(np.float64)  # x[n], x[n-1], ...
        values[start:start + len(block)] = np.abs(windows @ _TRUE_PEAK_PHASES.T).max(axis=1)
    return ends, values


def true_peak(samples: np.ndarray) -> float:
    """True peak (linear, >= 0): the larger of the sample peak and the 4x interpolated peak."""
    if len(samples) == 0:
        return 0.0
    sample_peak = float(np.max(np.abs(samples)))
    if sample_peak == 0.0:
        return 0.0
    _, values = _interpolated_peaks(samples, sample_peak)
    return max(sample_peak, float(values.max()) if values.size else 0.0)


def true_peak_dbtp(samples: np.ndarray) -> float:
    return amp_to_db(true_peak(samples))


@dataclass(frozen=True)
class PeakEnvelope:
    """Where the true-peak envelope of a signal exceeds `floor`: sorted sample indices and the
    envelope there (the larger of |sample| and the interpolated values attributed to it).

    The envelope is linear in the signal, so that of the signal times g is g times this one:
    a normaliser that tries several gains interpolates once, at a floor low enough for the
    largest gain it expects, and reads every pass off it (`over`)."""

    indices: np.ndarray
    values: np.ndarray
    floor: float

    def over(self, ceiling: float, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(indices, envelope) of the signal times `gain` where that exceeds `ceiling`."""
        if ceiling / gain < self.floor:
            raise ValueError(f"the envelope starts at {self.floor}, above {ceiling} / {gain}")
        keep = self.values * gain > ceiling
        return self.indices[keep], self.values[keep] * gain


def peak_envelope(samples: np.ndarray, floor: float) -> PeakEnvelope:
    """The true-peak envelope of `samples` where it exceeds `floor` (see PeakEnvelope).

    Interpolated values are attributed to the input sample nearest their time position, so a
    gain applied at those indices (and smoothly around them) brings them under a ceiling."""
    mag = np.abs(np.asarray(samples, dtype=np.float32))
    over = np.flatnonzero(mag > floor)
    indices, values = [over], [mag[over].astype(np.float64)]
    ends, interpolated = _interpolated_peaks(samples, floor)
    hot = interpolated > floor
    if hot.any():
        indices.append(np.clip(ends[hot] - TRUE_PEAK_DELAY, 0, len(mag) - 1))
        values.append(interpolated[hot])
    all_indices, all_values = np.concatenate(indices), np.concatenate(values)
    if all_indices.size:
        # one entry per sample position, keeping the largest; both lists are already sorted,
        # so a stable sort is a merge of two runs
        order = np.argsort(all_indices, kind="stable")
        all_indices, all_values = all_indices[order], all_values[order]
        first = np.flatnonzero(np.concatenate(([True], all_indices[1:] != all_indices[:-1])))
        all_indices, all_values = all_indices[first], np.maximum.reduceat(all_values, first)
    return PeakEnvelope(all_indices, all_values, floor)


def peak_excess(samples: np.ndarray, ceiling: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the true-peak envelope exceeds `ceiling`: (sorted sample indices, envelope there)."""
    return peak_envelope(samples, ceiling).over(ceiling)
