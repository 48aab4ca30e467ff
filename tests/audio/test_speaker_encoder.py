"""The numpy speaker encoder gives resemblyzer's own embeddings.

The reference figures in tests/audio/data/speaker_reference.npz were computed once with
resemblyzer 0.1.4 and torch (tools/speaker_encoder/convert_resemblyzer.py) on the two voice
fixtures, decoded exactly as `decode_to_mono(data, 16000)` decodes them. No torch here.
"""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from shared.audio.codec import decode_to_mono
from shared.audio.speaker import encoder
from shared.audio.speaker.encoder import cosine, embed_utterance, encoder_input, partial_starts
from shared.audio.speaker.mel import mel_filterbank, mel_frames

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "data" / "speaker_reference.npz"
FIXTURES = ["sample_en_49s", "librivox_austen_25s"]


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def decoded():
    return {name: decode_to_mono((ROOT / "fixtures" / "voice" / f"{name}.mp3").read_bytes(), 16000)
            for name in FIXTURES}


@pytest.mark.parametrize("name", FIXTURES)
def test_mel_frames_match_librosa(reference, decoded, name):
    wav = decoded[name]
    assert len(wav) == int(reference[f"{name}__n_samples"])
    ours, theirs = mel_frames(wav)[:160], reference[f"{name}__mel_head"]
    assert ours.shape == theirs.shape == (160, 40)
    assert np.abs(ours - theirs).max() <= 1e-4 * theirs.max()


@pytest.mark.parametrize("name", FIXTURES)
def test_embedding_matches_the_torch_reference(reference, decoded, name):
    emb = embed_utterance(decoded[name])
    expected_windows = reference[f"{name}__partials"]
    assert emb.windows.shape == expected_windows.shape
    assert cosine(emb.vector, reference[f"{name}__embedding"]) >= 0.999
    assert np.einsum("ij,ij->i", emb.windows, expected_windows).min() >= 0.999
    assert np.linalg.norm(emb.vector) == pytest.approx(1.0, abs=1e-5)
    assert "torch" not in sys.modules


def test_two_real_speakers_are_far_apart_and_one_speaker_is_close(decoded):
    ljs, austen = (embed_utterance(decoded[n]) for n in FIXTURES)
    half = len(decoded["sample_en_49s"]) // 2
    first, second = (embed_utterance(decoded["sample_en_49s"][s]) for s in (slice(None, half), slice(half, None)))
    assert cosine(first.vector, second.vector) > 0.9
    assert cosine(ljs.vector, austen.vector) < 0.75


def test_partial_windows_are_placed_as_resemblyzer_places_them():
    # 1.6 s windows every 77 frames; a last window less than 75 % real audio is dropped
    assert list(partial_starts(16000 * 2)) == [0, 77]
    assert list(partial_starts(100)) == [0]  # one window always, however short
    assert len(partial_starts(791509)) == 63 and len(partial_starts(395680)) == 31


def test_filterbank_covers_the_band_with_unit_area_triangles():
    fb = mel_filterbank()
    assert fb.shape == (40, 201)
    assert (fb >= 0).all() and (fb.sum(axis=0)[1:-1] > 0).all()
    assert mel_frames(np.zeros(0, np.float32)).shape == (1, 40)


def test_encoder_input_resamples_and_raises_only_quiet_audio():
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # -9 dBFS RMS
    out = encoder_input(tone, 44100)
    assert len(out) == 16000
    assert np.sqrt(np.mean(out ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # left alone
    quiet = encoder_input(tone * 0.001, 44100)
    assert 20 * np.log10(np.sqrt(np.mean(quiet ** 2))) == pytest.approx(-30.0, abs=0.1)
    assert len(encoder_input(np.zeros(0, np.float32), 16000)) == 0


def test_weights_ship_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["shared"]
    shipped = f"data/speaker_encoder/{encoder.WEIGHTS_FILE}"
    assert any(fnmatch.fnmatch(shipped, p) for p in patterns)
    assert (ROOT / "shared" / shipped).is_file()
    for doc in ("LICENSE", "SOURCE.md"):
        assert (ROOT / "shared" / "data" / "speaker_encoder" / doc).is_file()


@pytest.mark.parametrize("rate", [44100, 48000, 16000])
def test_windows_resampled_a_stretch_at_a_time_are_those_of_the_whole(rate):
    # the speaker check resamples only the stretches its windows cover (EncoderAudio): the mel
    # windows must be the ones the whole recording, resampled at once, gives
    x = decode_to_mono((ROOT / "fixtures" / "voice" / "sample_en_49s.mp3").read_bytes(), rate)
    wav, starts = encoder.utterance_windows(encoder_input(x, rate), 0.625)
    audio = encoder.EncoderAudio(x, rate)
    assert audio.n == int(np.ceil(len(x) * 16000 / rate)) and audio.gain == 1.0  # a voice louder than -30 dBFS
    some = starts[[0, 1, len(starts) // 2, -1]]  # both ends, where the padding is
    whole = encoder.window_mels(wav, some)
    assert np.abs(audio.window_mels(some) - whole).max() <= 1e-5 * whole.max()
    # a quiet recording is raised to -30 dBFS as encoder_input raises it, within 0.1 dB (the
    # gain is measured before resampling, with the little energy above 8 kHz)
    quiet = encoder.EncoderAudio(x * 0.01, rate).read(0, audio.n)
    assert 20 * np.log10(np.sqrt(np.mean(np.square(quiet, dtype=np.float64)))) == pytest.approx(-30.0, abs=0.1)
