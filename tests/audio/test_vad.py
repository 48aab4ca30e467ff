"""Voice activity detection: word edges, clicks, a changing background, the real recording."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.vad import audible_span, detect_speech
from tests.audio.helpers import BURSTS, SR, scene, voiced


def test_finds_bursts_with_accurate_edges():
    activity = detect_speech(scene(), SR)
    regions = activity.regions / SR
    assert len(regions) == len(BURSTS)
    for (start, end), (found_start, found_end) in zip(BURSTS, regions, strict=True):
        assert found_start == pytest.approx(start, abs=0.03)
        assert found_end == pytest.approx(end, abs=0.03)


def test_clicks_are_not_speech():
    x = scene()
    for at in (3.0, 5.5, 6.0):  # 3 ms taps on the microphone
        x[round(at * SR):round(at * SR) + 130] += 0.5
    assert len(detect_speech(x, SR).regions) == len(BURSTS)


def test_noise_floor_follows_a_background_that_changes():
    """A fan switches on at 10 s, 25 dB over the room: not speech, and speech over it still is."""
    quiet, loud = scene(-65.0), scene(-40.0)
    activity = detect_speech(np.concatenate([quiet, loud]), SR)
    regions = activity.regions / SR
    assert len(regions) == 2 * len(BURSTS)
    expected = [(s, e) for s, e in BURSTS] + [(s + 10.0, e + 10.0) for s, e in BURSTS]
    for (start, end), (found_start, found_end) in zip(expected, regions, strict=True):
        assert found_start == pytest.approx(start, abs=0.06)
        assert found_end == pytest.approx(end, abs=0.06)
    floor_quiet = np.median(activity.floor_db[: 1000])
    floor_loud = np.median(activity.floor_db[1000:])
    assert floor_loud - floor_quiet == pytest.approx(25.0, abs=4.0)


def test_digital_silence_holds_no_speech():
    activity = detect_speech(np.zeros(5 * SR, np.float32), SR)
    assert len(activity.regions) == 0 and activity.speech_seconds(0.2) == 0.0


def test_real_recording(voice_mp3):
    voice = decode_to_mono(voice_mp3, SR)
    activity = detect_speech(voice, SR)
    assert 40.0 < activity.speech_seconds(0.2) < len(voice) / SR
    assert activity.regions[0, 0] / SR < 0.5  # the reading starts right away
    assert activity.regions[-1, 1] / SR > 48.0


def test_padded_regions_merge_overlaps():
    activity = detect_speech(scene(), SR)
    wide = activity.padded_regions(1.0, 1.0) / SR
    # bursts 1.5 s apart merge once each is widened by 1 s on both sides; the last stays apart
    np.testing.assert_allclose(wide, [[0.0, 5.6], [6.0, 10.0]], atol=0.03)


def test_audible_span_trims_only_the_silent_edges():
    burst = voiced(1.0, -20.0, seed=0)
    x = np.concatenate([np.zeros(SR // 2, np.float32), burst, np.zeros(SR, np.float32)])
    start, end = audible_span(x, SR)
    assert start / SR == pytest.approx(0.5 - 0.03, abs=0.01)
    assert end / SR == pytest.approx(1.5 + 0.03, abs=0.01)
    assert audible_span(np.zeros(SR, np.float32), SR) == (0, 0)
