"""Mostly speech, or music or noise? The SAMPLE_NOT_SPEECH check on real voices and real music."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from shared.audio.clean import clean_sample
from shared.audio.codec import decode_to_mono
from shared.audio.speaker.checks import speech_only
from shared.audio.speechlike import MIN_SYLLABLES_PER_S, speech_likeness
from shared.audio.vad import detect_speech
from shared.errors import SampleNotSpeech
from tests.audio.helpers import wav_bytes
from tests.conftest import REPO, SECOND_SPEAKER

SR = 44100
MUSIC = REPO / "fixtures" / "sounds" / "house_lo.ogg"


def looped(x: np.ndarray, seconds: float) -> np.ndarray:
    return np.tile(x, int(np.ceil(seconds * SR / len(x))))[:round(seconds * SR)]


def at_rms(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x / np.sqrt(np.mean(np.square(x, dtype=np.float64))) * 10.0 ** (dbfs / 20.0)).astype(np.float32)


@pytest.fixture(scope="module")
def music():
    return decode_to_mono(MUSIC.read_bytes(), SR)


@pytest.fixture(scope="module")
def voice(voice_mp3):
    return decode_to_mono(voice_mp3, SR)


def test_real_voices_make_syllables_well_above_the_bound(voice):
    for x in (voice, decode_to_mono(SECOND_SPEAKER.read_bytes(), SR)):
        likeness = speech_likeness(speech_only(x, detect_speech(x, SR).padded_regions(0.0, 0.2)), SR)
        assert likeness.speech and likeness.syllables_per_s > 2.5 * MIN_SYLLABLES_PER_S, likeness


def test_music_is_refused_with_the_reason_and_what_to_do(music):
    with pytest.raises(SampleNotSpeech) as caught:
        clean_sample(wav_bytes(at_rms(looped(music, 35), -20.0), SR))
    err = caught.value
    assert err.code == "SAMPLE_NOT_SPEECH" and err.status == 422
    assert "does not sound mostly like speech" in err.message and "Music or noise" in err.message
    assert "no music" in err.action
    assert err.details["speech"]["syllables_per_s"] < MIN_SYLLABLES_PER_S / 2
    assert err.details["report"]["duration_before_s"] == pytest.approx(35, abs=0.1)


def test_steady_noise_is_refused_as_no_speech_not_as_a_quiet_voice():
    # synthetic brown noise (integrated white noise), the rumble of a fan or traffic, at a level
    # that passes the loudness rule: there is no voice to be "N dB above" it
    white = np.random.default_rng(11).standard_normal(35 * SR)
    with pytest.raises(SampleNotSpeech) as caught:
        clean_sample(wav_bytes(at_rms(signal.lfilter([1.0], [1.0, -0.995], white), -25.0), SR))
    assert "no speech" in caught.value.message


def test_a_voice_over_soft_music_is_still_a_voice(voice, music):
    bed = looped(music, len(voice) / SR)
    for below_db in (20, 10):
        level = np.sqrt(np.mean(np.square(voice, dtype=np.float64))) * 10.0 ** (-below_db / 20.0)
        mixed = voice + at_rms(bed, 20.0 * np.log10(level))
        cleaned = clean_sample(wav_bytes(mixed, SR))
        assert cleaned.report.speech_s > 40, below_db
