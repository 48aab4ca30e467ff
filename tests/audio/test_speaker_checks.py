"""One speaker or several: the window analysis on real recordings, and its place in clean_sample."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.clean import clean_sample
from shared.audio.codec import decode_to_mono
from shared.audio.speaker.checks import MAX_SPLIT_COSINE, analyse_speech, speech_only, split_in_two
from shared.audio.vad import detect_speech
from shared.errors import SampleMultipleSpeakers
from tests import samples
from tests.conftest import SECOND_SPEAKER

SR = 44100


def speech(x: np.ndarray):
    return speech_only(x, detect_speech(x, SR).padded_regions(0.0, 0.2))


@pytest.fixture(scope="module")
def voices(voice_mp3):
    return decode_to_mono(voice_mp3, SR), decode_to_mono(SECOND_SPEAKER.read_bytes(), SR)


def test_one_real_speaker_is_one_speaker(voices):
    for voice in voices:
        result = analyse_speech(speech(voice), SR)
        assert not result.several_speakers
        assert result.split_cosine > MAX_SPLIT_COSINE + 0.05  # calibrated margin, docs/VOICE_MATCH.md
        assert result.consistency > 0.85


@pytest.mark.parametrize("layout", ["halves", "mostly_first", "interleaved", "five_seconds_inside"])
def test_two_real_speakers_are_found_however_joined(voices, layout):
    first, second = voices
    n = len(second)
    if layout == "halves":
        joined = np.concatenate([first[:n], second])
    elif layout == "mostly_first":  # 10 s of the second voice in 50 s
        joined = np.concatenate([first[:40 * SR], second[:10 * SR]])
    elif layout == "five_seconds_inside":
        # 5 s of the second voice (3 windows) inside 45 s of the first: the first pass, which
        # embeds every third window, sees one of them and calls for all the windows
        joined = np.concatenate([first[:20 * SR], second[10 * SR:15 * SR], first[20 * SR:45 * SR]])
    else:  # turns of 5 s, as in a conversation
        turn = 5 * SR
        joined = np.concatenate([part for i in range(0, n, turn) for part in (first[i:i + turn], second[i:i + turn])])
    result = analyse_speech(speech(joined), SR)
    assert result.several_speakers, result.to_dict()
    assert result.split_cosine < MAX_SPLIT_COSINE - 0.1
    # the mixed sample's windows are less alike than either voice's own
    assert result.consistency < min(analyse_speech(speech(v), SR).consistency for v in voices)


def test_split_in_two_finds_two_clusters_and_leaves_one_alone():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=256), rng.normal(size=256)
    group = lambda c, k: c + 0.2 * rng.normal(size=(k, 256))  # noqa: E731
    windows = np.vstack([group(a, 6), group(b, 4)])
    windows /= np.linalg.norm(windows, axis=1, keepdims=True)
    labels = split_in_two(windows)
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]
    assert list(split_in_two(windows[:1])) == [0]


def test_clean_sample_reports_consistency_and_refuses_two_voices(cleaned_fixture):
    report = cleaned_fixture.report.to_dict()
    assert 80 <= report["speaker_consistency"] <= 100
    assert report["speaker_split_cosine"] > MAX_SPLIT_COSINE
    assert cleaned_fixture.speaker_embedding.shape == (256,)
    with pytest.raises(SampleMultipleSpeakers) as caught:
        clean_sample(samples.two_speakers())
    err = caught.value
    assert err.code == "SAMPLE_MULTIPLE_SPEAKERS" and err.status == 422
    assert "more than one voice" in err.message and "alone" in err.action
    assert err.details["report"]["speaker_consistency"] < report["speaker_consistency"]
    assert err.details["speakers"]["split_cosine"] < MAX_SPLIT_COSINE
