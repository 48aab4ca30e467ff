"""BS.1770-4 loudness and true peak, against pyloudnorm, brute force and known values."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.loudness import (
    _TRUE_PEAK_PHASES,
    integrated_loudness,
    peak_excess,
    true_peak,
    true_peak_dbtp,
)
from tests.audio.helpers import SR


def sine(freq: float, amplitude: float, seconds: float, sr: int = SR, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def brute_force_true_peak(x: np.ndarray) -> float:
    """Every phase of the BS.1770 Annex 2 interpolator over every sample."""
    x64 = np.asarray(x, dtype=np.float64)
    interpolated = max(np.abs(np.convolve(x64, phase)).max() for phase in _TRUE_PEAK_PHASES)
    return max(float(np.abs(x64).max()), float(interpolated))


@pytest.mark.parametrize("sr", [44100, 48000])
def test_matches_pyloudnorm_on_real_speech(voice_mp3, sr):
    voice = decode_to_mono(voice_mp3, sr)
    ours = integrated_loudness(voice, sr)
    reference = pyloudnorm.Meter(sr).integrated_loudness(voice.astype(np.float64))
    assert ours == pytest.approx(reference, abs=0.1)


@pytest.mark.parametrize("gain_db", [-30.0, -10.0, 0.0])
def test_matches_pyloudnorm_on_noise_and_tones(gain_db):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(10 * SR) * 0.1 * 10 ** (gain_db / 20)
    tones = sine(100, 0.2, 10) + sine(3000, 0.1, 10)
    for signal in (noise, tones):
        ours = integrated_loudness(signal, SR)
        assert ours == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(signal.astype(np.float64)), abs=0.1)


def test_one_khz_sine_reads_its_rms_level():
    """BS.1770 is calibrated so a 1 kHz sine reads its RMS level: -20 dBFS peak -> -23.01 LUFS."""
    assert integrated_loudness(sine(1000, 0.1, 5), SR) == pytest.approx(-23.01, abs=0.05)
    assert integrated_loudness(sine(1000, 0.1, 5, 48000), 48000) == pytest.approx(-23.01, abs=0.02)


def test_gating_ignores_silence_and_quiet_passages():
    tone = sine(1000, 0.1, 10)
    gaps = np.concatenate([tone[: 5 * SR], np.zeros(20 * SR, np.float32), tone[5 * SR:]])
    whisper = np.concatenate([tone, sine(1000, 0.001, 20)])  # 40 dB down: under the relative gate
    reference = integrated_loudness(tone, SR)
    # ungated, 20 s of silence in 30 s would read 4.8 dB lower; only the blocks straddling
    # tone edges (partly tone, above the relative gate) pull it down a little; the whisper,
    # 40 dB down, falls under the relative gate
    assert integrated_loudness(gaps, SR) == pytest.approx(reference, abs=0.2)
    assert integrated_loudness(whisper, SR) == pytest.approx(reference, abs=0.1)


def test_unmeasurable_signals_give_none():
    assert integrated_loudness(np.zeros(5 * SR, np.float32), SR) is None
    assert integrated_loudness(sine(1000, 0.5, 0.3), SR) is None  # shorter than one 400 ms block
    assert integrated_loudness(sine(1000, 1e-4, 5), SR) is None  # -83 LUFS, under the -70 gate
    assert integrated_loudness(sine(1000, 1e-4, 5), SR, absolute_gate=False) == pytest.approx(-83.01, abs=0.05)


def test_true_peak_sees_the_peak_between_samples():
    """A quarter-rate sine sampled at 45 degrees: every sample is at 0.707, the wave at 1.0."""
    n = np.arange(SR)
    x = np.sin(np.pi / 2 * n + np.pi / 4).astype(np.float32) * 0.5
    assert np.abs(x).max() == pytest.approx(0.5 * 0.7071, abs=1e-4)
    assert true_peak_dbtp(x) == pytest.approx(20 * np.log10(0.5), abs=0.3)


@pytest.mark.parametrize("gain_db", [0.0, 12.0, 30.0])
def test_true_peak_equals_brute_force(voice_mp3, gain_db):
    """Sparse candidates for speech, dense convolution when clipped flat (+30 dB)."""
    voice = decode_to_mono(voice_mp3, SR)[: 10 * SR]
    x = np.clip(voice * 10 ** (gain_db / 20), -1, 1).astype(np.float32)
    assert true_peak(x) == pytest.approx(brute_force_true_peak(x), rel=1e-6)


def test_peak_excess_finds_every_sample_over_the_ceiling(voice_mp3):
    voice = decode_to_mono(voice_mp3, SR)[: 10 * SR] * 2.0
    ceiling = 0.7
    idx, values = peak_excess(voice, ceiling)
    assert np.all(values > ceiling)
    assert np.all(np.diff(idx) > 0)
    assert set(np.flatnonzero(np.abs(voice) > ceiling)) <= set(idx)
    assert values.max() == pytest.approx(true_peak(voice), rel=1e-6)
