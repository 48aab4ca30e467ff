"""The note's noise bed: a stretch of one long bed per process, its loudness known without a
measurement, never repeating within a note."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from shared.audio.bed import BED_S, noise_bed
from shared.audio.loudness import integrated_loudness
from tests.audio.helpers import SR

NOTE = 32 * SR + 123  # a 30 s note with its lead-in and tail, not a whole number of blocks


def _max_correlation(piece: np.ndarray, other: np.ndarray) -> float:
    """Largest normalised cross-correlation of `piece` anywhere in `other` (1.0: a copy). Both
    are whitened first (first difference): brown noise is so smooth that chance alignments of
    the raw signal correlate well, while a repeat stays a repeat after differencing."""
    piece, other = np.diff(piece.astype(np.float64)), np.diff(other.astype(np.float64))
    corr = signal.correlate(other, piece, mode="valid", method="fft")
    csum = np.concatenate(([0.0], np.cumsum(other ** 2)))
    energy = csum[len(piece):] - csum[:-len(piece)]
    return float(np.max(np.abs(corr) / np.sqrt(energy * np.sum(piece ** 2))))


@pytest.mark.parametrize("n", [SR, NOTE, round(BED_S * SR)])
def test_the_bed_comes_with_its_loudness(n):
    for seed in range(4):
        bed, lufs = noise_bed(n, SR, seed)
        assert len(bed) == n and bed.dtype == np.float32
        assert lufs == pytest.approx(integrated_loudness(bed, SR), abs=0.02)


def test_the_bed_is_deterministic_per_note_and_differs_between_notes():
    first, _ = noise_bed(NOTE, SR, seed=7)
    np.testing.assert_array_equal(first, noise_bed(NOTE, SR, seed=7)[0])
    stretches = [noise_bed(NOTE, SR, seed)[0] for seed in range(5)]
    assert not any(np.array_equal(a, b) for i, a in enumerate(stretches) for b in stretches[i + 1:])


def test_a_shared_bed_cannot_be_changed_by_a_note():
    bed, _ = noise_bed(NOTE, SR, seed=1)
    with pytest.raises(ValueError):
        bed[0] = 1.0


@pytest.mark.parametrize("seconds", [30.0, BED_S + 20.0])
def test_the_bed_does_not_repeat_within_a_note(seconds):
    """Past the long bed's length a note gets fresh noise, not the bed looped."""
    bed, lufs = noise_bed(round(seconds * SR), SR, seed=2)
    assert lufs == pytest.approx(integrated_loudness(bed, SR), abs=0.02)
    piece = bed[-SR // 2:]  # the note's last half second, looked for in everything before it
    assert _max_correlation(piece, bed[: -SR // 2]) < 0.3
    looped = np.concatenate((bed, bed[:SR]))  # what a repeat would look like to this check
    assert _max_correlation(looped[-SR // 2:], looped[: -SR // 2]) > 0.99
