"""Loudness normalisation under a true-peak ceiling, and the limiter behind it."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.loudness import (
    db_to_amp,
    integrated_loudness,
    true_peak,
    true_peak_dbtp,
)
from shared.audio.normalize import MAX_GAIN_DB, limiter_gain, normalize_loudness
from tests.audio.helpers import SR


@pytest.fixture(scope="module")
def voice(voice_mp3) -> np.ndarray:
    return decode_to_mono(voice_mp3, SR)


@pytest.mark.parametrize("target, ceiling", [(-20.0, -3.0), (-16.0, -1.5), (-23.0, -1.0)])
def test_speech_reaches_target_under_ceiling(voice, target, ceiling):
    result = normalize_loudness(voice, SR, target, ceiling)
    assert result.loudness_after_lufs == pytest.approx(target, abs=0.2)
    assert integrated_loudness(result.samples, SR) == pytest.approx(result.loudness_after_lufs, abs=1e-6)
    assert true_peak_dbtp(result.samples) <= ceiling + 1e-3
    assert result.true_peak_dbtp == pytest.approx(true_peak_dbtp(result.samples), abs=1e-6)
    assert result.loudness_before_lufs == pytest.approx(integrated_loudness(voice, SR), abs=1e-9)


def test_no_limiting_when_peaks_fit(voice):
    """Plenty of headroom: a pure gain change, bit for bit."""
    result = normalize_loudness(voice, SR, -30.0, -1.0)
    assert result.limited_db == 0.0
    gain = np.float32(db_to_amp(result.gain_db))
    np.testing.assert_array_equal(result.samples, voice * gain)


def test_limiter_only_touches_the_neighbourhood_of_peaks():
    """A steady tone with one loud burst: the tone far from the burst keeps its exact level."""
    n = 6 * SR
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / SR)).astype(np.float32)
    burst = slice(3 * SR, 3 * SR + SR // 100)
    tone[burst] *= 9.0  # +19 dB for 10 ms
    positions, gain, depth = limiter_gain(tone, SR, ceiling=0.5)
    assert depth == pytest.approx(20 * np.log10(true_peak(tone) / 0.5), abs=1e-6)
    full = np.ones(n, dtype=np.float32)
    full[positions] = gain
    limited = tone * full
    assert true_peak(limited) <= 0.5 * 1.01
    assert np.all(full[: 2 * SR] == 1.0) and np.all(full[5 * SR:] == 1.0)
    # no click from the gain itself: its steepest step is a small fraction of a dB per sample
    step_db = np.abs(np.diff(20 * np.log10(full)))
    assert step_db.max() < 0.5


def test_silence_is_left_alone():
    result = normalize_loudness(np.zeros(3 * SR, np.float32), SR, -20.0, -3.0)
    assert result.loudness_before_lufs is None and result.loudness_after_lufs is None
    assert not result.samples.any()


def test_gain_is_capped(voice):
    faint = voice * np.float32(db_to_amp(-65.0))  # -87 LUFS, under the -70 LUFS gate
    assert normalize_loudness(faint, SR, -20.0, -3.0).gain_db == 0.0
    quiet = voice * np.float32(db_to_amp(-45.0))  # -67 LUFS: needs 47 dB
    assert normalize_loudness(quiet, SR, -20.0, -3.0).gain_db == MAX_GAIN_DB
