"""The brown-noise bed under a note: made once per process, a stretch of it per note.

Generating and filtering a note's worth of noise cost ~45 ms of CPU per 30 s note, and
measuring its loudness ~10 ms more, for a sound that is the same kind of noise every time. A
process instead keeps one long bed (`BED_S`, seeded: the same in every process) together with
the K-weighted energies of its 100 ms loudness sub-blocks. A note takes a contiguous stretch at
an offset its seed picks: one stretch of a non-repeating noise, so nothing repeats within the
note, and its loudness is the gating of the sub-blocks it spans (the offset falls on a
sub-block boundary), with nothing filtered or measured per note. A note longer than the bed
gets fresh noise of its own length, as every note did before.

Memory: 100 s at 44.1 kHz is 17.6 MB of float32 per process; the perform worker makes it in
its parent before the pool forks (workers/app.py), so the pool children share those pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from shared.audio.loudness import STEP_S, blocks_of, gated_loudness, integrated_loudness, sub_block_energies

#: the longest routine asks for 120 words: ~80 s at the slowest speaking rate (0.7), plus the
#: 2 s of lead-in and tail; longer notes fall back to fresh noise
BED_S = 100.0
BED_SEED = 0


def _shape_bed(noise: np.ndarray, sr: int) -> np.ndarray:
    """Brown-ish colouring: leaky integrator (-6 dB/octave above 50 Hz and flat below, so no
    DC drift and no sub-bass build-up, unlike a true integrator), 40 Hz high-pass (rumble that
    phones cannot play but that eats headroom), 3 kHz gentle low-pass (a fan's soft whoosh,
    without hiss)."""
    leak = math.exp(-2.0 * math.pi * 50.0 / sr)
    integrator = np.array([[1.0, 0.0, 0.0, 1.0, -leak, 0.0]])
    highpass = signal.butter(2, 40.0, btype="highpass", fs=sr, output="sos")
    lowpass = signal.butter(2, 3000.0, btype="lowpass", fs=sr, output="sos")
    return signal.sosfilt(np.vstack((integrator, highpass, lowpass)), noise)


def brown_noise(duration_s: float, sr: int, seed: int = 0, *, rms_dbfs: float = -20.0) -> np.ndarray:
    """A soft, fan-like noise bed: deterministic for a seed, RMS-normalised to `rms_dbfs`."""
    n = max(0, round(duration_s * sr))
    settle = round(0.5 * sr)  # run the filters in before the part we keep: no start-up thump
    white = np.random.default_rng(seed).standard_normal(n + settle)
    bed = _shape_bed(white, sr)[settle:]
    rms = math.sqrt(float(np.mean(bed * bed))) if n else 0.0
    if rms > 0.0:
        bed *= 10.0 ** (rms_dbfs / 20.0) / rms
    return bed.astype(np.float32)


@dataclass(frozen=True)
class _LongBed:
    samples: np.ndarray  # read-only: shared by every note of the process
    sub_energies: np.ndarray  # loudness.sub_block_energies of `samples`
    step: int  # samples per sub-block


@lru_cache(maxsize=2)
def _long_bed(sr: int) -> _LongBed:
    samples = brown_noise(BED_S, sr, BED_SEED)
    samples.setflags(write=False)
    return _LongBed(samples, sub_block_energies(samples, sr), round(STEP_S * sr))


def warm(sr: int = 44100) -> None:
    """Make the long bed now (0.2-0.3 CPU-s): in a worker's parent before it forks (mix.warm)."""
    _long_bed(sr)


def noise_bed(n: int, sr: int, seed: int = 0) -> tuple[np.ndarray, float | None]:
    """`n` samples of bed for one note (read-only: callers fade a copy) and their integrated
    loudness in LUFS. Deterministic for a seed; different seeds mostly take different stretches."""
    bed = _long_bed(sr)
    if n > len(bed.samples):
        fresh = brown_noise(n / sr, sr, seed)
        return fresh, integrated_loudness(fresh, sr)
    offsets = (len(bed.samples) - n) // bed.step + 1  # sub-block boundaries a stretch can start on
    first = int(np.random.default_rng(seed).integers(offsets))
    stretch = bed.samples[first * bed.step: first * bed.step + n]
    blocks = blocks_of(bed.sub_energies[first: first + n // bed.step], sr)
    return stretch, gated_loudness(blocks)
