"""Click-free editing: fades, equal-power splices, pause shortening."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.edit import apply_fades, fade_in_curve, keep_spans, splice
from tests.audio.helpers import SR, white_noise


def test_fade_curve_rises_smoothly_from_silence_to_full():
    curve = fade_in_curve(441)
    assert curve[0] < 0.001 and curve[-1] > 0.999
    assert np.all(np.diff(curve) > 0)


def test_apply_fades_leaves_the_input_alone():
    x = np.ones(1000, np.float32)
    faded = apply_fades(x, 100, 200)
    assert np.all(x == 1.0)
    assert faded[0] < 0.001 and faded[-1] < 0.001
    assert np.all(faded[100:800] == 1.0)
    assert len(apply_fades(np.ones(10, np.float32), 100, 100)) == 10  # longer fade than signal


def test_splice_length_accounts_for_the_overlaps():
    pieces = [np.ones(1000, np.float32), np.ones(500, np.float32), np.ones(40, np.float32)]
    # the last junction is limited by the 40-sample piece: overlap 20
    assert len(splice(pieces, 100)) == 1540 - 100 - 20
    assert len(splice([], 100)) == 0


def test_equal_power_splice_keeps_noise_level_through_the_join():
    """Room tone into room tone: no dip (equal gain would lose 3 dB mid-fade)."""
    a, b = white_noise(SR, -40.0, seed=1), white_noise(SR, -40.0, seed=2)
    overlap = round(0.05 * SR)
    joined = splice([a, b], overlap)
    middle = joined[SR - overlap: SR]

    def level(x):
        return 10 * np.log10(np.mean(x.astype(np.float64) ** 2))

    assert level(middle) == pytest.approx(level(a), abs=0.7)


def test_splice_of_unrelated_waves_has_no_click():
    t = np.arange(SR // 2) / SR
    a = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    b = (0.5 * np.sin(2 * np.pi * 330 * t + 2.0)).astype(np.float32)
    butt = np.concatenate([a, b])
    joined = splice([a, b], round(0.01 * SR))
    steepest = max(np.abs(np.diff(a)).max(), np.abs(np.diff(b)).max())
    assert np.abs(np.diff(butt)).max() > 2 * steepest  # the naive join clicks
    # no step: at worst the sqrt(2) swell of an equal-power fade between two in-phase waves
    assert np.abs(np.diff(joined)).max() <= steepest * np.sqrt(2)


def test_keep_spans_shortens_only_long_pauses():
    sr = 1000
    regions = np.array([[1000, 2000], [5000, 6000], [6500, 7000]])  # pauses of 3 s and 0.5 s
    overlap = 30
    spans = keep_spans(regions, 10_000, sr, max_pause_s=1.0, lead_s=0.1, tail_s=0.2, overlap=overlap)
    assert spans[0][0] == 900 and spans[-1][1] == 7200
    assert len(spans) == 2  # one cut, in the 3 s pause; the 0.5 s pause is untouched
    kept_pause = (spans[0][1] - 2000) + (5000 - spans[1][0]) - overlap
    assert kept_pause == pytest.approx(1000, abs=1)
    assert keep_spans(np.zeros((0, 2), int), 10_000, sr, max_pause_s=1.0, lead_s=0.1, tail_s=0.2) == []
