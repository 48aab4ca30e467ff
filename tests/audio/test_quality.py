"""The measurements behind accept/reject: clipping and signal-to-noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.quality import MAX_SNR_DB, QualityReport, clipping_ratio, snr_db
from shared.audio.vad import detect_speech
from tests.audio.helpers import BURSTS, SR, voiced, white_noise


def whole(x: np.ndarray) -> np.ndarray:
    return np.array([[0, len(x)]])


def test_clean_speech_is_not_clipped_at_any_level(voice_mp3):
    voice = decode_to_mono(voice_mp3, SR)
    for scale in (0.1, 1.0 / np.abs(voice).max()):  # quiet, and peak-normalised to 0 dBFS
        assert clipping_ratio(voice * scale, whole(voice)) < 1e-4


def test_clipping_is_found_wherever_the_ceiling_is(voice_mp3):
    voice = decode_to_mono(voice_mp3, SR)
    clipped = np.clip(voice * 10, -1, 1)
    ratio = clipping_ratio(clipped, whole(clipped))
    assert ratio > 0.05
    # a recorder that clipped, then scaled the result down by 6 dB: still clipped
    assert clipping_ratio(clipped * 0.5, whole(clipped)) == pytest.approx(ratio)


def test_clipping_ratio_counts_only_inside_spans():
    x = white_noise(4 * SR, -30.0, seed=1)
    x[SR: SR + 1000] = 0.9  # a flat-topped run inside the first span
    inside = clipping_ratio(x, np.array([[0, 2 * SR]]))
    outside = clipping_ratio(x, np.array([[2 * SR, 4 * SR]]))
    assert inside == pytest.approx(1000 / (2 * SR), rel=0.01)
    assert outside == 0.0
    assert clipping_ratio(x, np.zeros((0, 2), int)) == 0.0


@pytest.mark.parametrize("noise_dbfs", [-70.0, -50.0, -35.0])
def test_snr_estimate_follows_the_noise(noise_dbfs):
    x = white_noise(10 * SR, noise_dbfs, seed=2)
    for i, (start, end) in enumerate(BURSTS):
        x[round(start * SR): round(end * SR)] += voiced(end - start, -20.0, seed=i)
    estimate = snr_db(detect_speech(x, SR))
    # the VAD's 80 Hz high-pass removes ~0.2 dB of the white noise; speech frames sit at -20
    assert estimate == pytest.approx(-20.0 - noise_dbfs, abs=2.5)


def test_snr_of_digital_silence_is_capped():
    x = np.zeros(10 * SR, np.float32)
    for i, (start, end) in enumerate(BURSTS):
        x[round(start * SR): round(end * SR)] += voiced(end - start, -20.0, seed=i)
    assert snr_db(detect_speech(x, SR)) > MAX_SNR_DB - 1.0  # floor clamped at -120 dBFS


def test_report_serialises_to_plain_json():
    report = QualityReport(
        duration_before_s=49.46931, duration_after_s=48.7, speech_s=46.65, speech_ratio=0.94301234,
        clipping_ratio=0.0, snr_db=math.inf, loudness_before_lufs=None, loudness_after_lufs=-20.0123,
        true_peak_dbtp=-3.05, sample_rate=SR, format="mp3/mp3",
    )
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["speech_ratio"] == 0.943 and data["duration_before_s"] == 49.47
    assert data["snr_db"] is None and data["loudness_before_lufs"] is None
