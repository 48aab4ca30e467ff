"""Shared fixtures for the audio DSP tests: the real voice recording and ways to derive
variants of it (other containers, cut, padded, clipped, noisy...).

The voice fixture is the repository's own `fixtures/voice/sample_en_49s.mp3` (49.5 s, one
speaker, mono 32 kHz MP3; source and license in fixtures/voice/SOURCES.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.audio.clean import clean_sample
from shared.audio.codec import decode_to_mono
from tests.audio.helpers import FIXTURE_SR


@pytest.fixture(scope="session")
def voice_fixture_path() -> Path:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "voice" / "sample_en_49s.mp3"
    assert path.is_file(), f"voice fixture missing: {path}"
    return path


@pytest.fixture(scope="session")
def voice_mp3(voice_fixture_path: Path) -> bytes:
    return voice_fixture_path.read_bytes()


@pytest.fixture(scope="session")
def voice_pcm(voice_mp3: bytes) -> np.ndarray:
    """The fixture decoded at its own 32 kHz, float32 mono: the base for derived variants."""
    return decode_to_mono(voice_mp3, FIXTURE_SR)


@pytest.fixture(scope="session")
def cleaned_fixture(voice_mp3: bytes):
    """clean_sample on the untouched fixture, computed once."""
    return clean_sample(voice_mp3)
