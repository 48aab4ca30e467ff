"""The 0-100 voice match score: its anchors, its bands, and real speech on both sides of them."""

from __future__ import annotations

import numpy as np
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.speaker.match import (
    DIFFERENT_SPEAKERS_COSINE,
    SAME_SPEAKER_COSINE,
    match_score,
    score_speech,
    speech_embedding,
)
from tests.conftest import SECOND_SPEAKER

SR = 16000


def test_score_runs_from_different_people_to_the_same_person():
    assert match_score(DIFFERENT_SPEAKERS_COSINE).score == 0
    assert match_score(0.2).score == 0
    assert match_score(SAME_SPEAKER_COSINE).score == 100
    assert match_score(0.999).score == 100
    middle = match_score((DIFFERENT_SPEAKERS_COSINE + SAME_SPEAKER_COSINE) / 2)
    assert middle.score == 50 and middle.band == "fair"
    assert [match_score(c).band for c in (0.95, 0.84, 0.80, 0.70, 0.57)] == ["close", "close", "fair", "far", "far"]
    assert match_score(0.9).to_dict() == {"score": 86, "band": "close", "cosine": 0.9}


@pytest.fixture(scope="module")
def speakers(voice_mp3):
    return decode_to_mono(voice_mp3, SR), decode_to_mono(SECOND_SPEAKER.read_bytes(), SR)


def test_real_speech_scores_close_to_its_owner_and_far_from_another(speakers):
    owner, other = speakers
    owner_embedding = speech_embedding(owner[12 * SR:], SR)
    own_phrase = score_speech(owner[:7 * SR], SR, owner_embedding)  # 7 s the sample does not contain
    other_phrase = score_speech(other[:7 * SR], SR, owner_embedding)
    assert own_phrase.band == "close" and own_phrase.score >= 80
    assert other_phrase.band == "far" and other_phrase.score <= 10


def test_silence_has_no_score(speakers):
    owner_embedding = speech_embedding(speakers[0], SR)
    assert score_speech(np.zeros(5 * SR, np.float32), SR, owner_embedding) is None
