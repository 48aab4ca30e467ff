"""Probing, bounded decoding and level-transparent MP3 encoding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from shared.audio.codec import (
    AudioDecodeError,
    decode_many_to_mono,
    decode_to_mono,
    encode_mp3,
    lame_gain,
    probe,
    to_pcm16,
)
from shared.audio.loudness import integrated_loudness
from shared.errors import AppError
from tests.audio.helpers import SR, ffmpeg_transcode


def test_probe_reads_the_fixture(voice_mp3):
    info = probe(voice_mp3)
    assert (info.format_name, info.codec_name, info.sample_rate, info.channels) == ("mp3", "mp3", 32000, 1)
    assert info.duration_s == pytest.approx(49.5, abs=0.1)


def test_probe_goes_by_content_not_name(voice_mp3):
    assert probe(ffmpeg_transcode(voice_mp3, ".ogg", "-c:a", "libopus")).codec_name == "opus"
    with pytest.raises(AudioDecodeError, match="not an audio recording we can read"):
        probe(b"ID3 but really just text" * 100)
    with pytest.raises(AudioDecodeError, match="The file is empty"):
        probe(b"")


def test_the_decode_error_does_not_decide_whose_fault_it_is():
    # The codec reads users' uploads and providers' audio alike; only the caller knows which,
    # so its error is no public error code (the clone path makes it SAMPLE_UNSUPPORTED).
    assert not issubclass(AudioDecodeError, AppError)


def test_decoding_is_bounded(voice_mp3):
    head = decode_to_mono(voice_mp3, SR, max_seconds=5.0)
    assert len(head) / SR == pytest.approx(5.0, abs=3 / SR)
    full = decode_to_mono(voice_mp3, SR)
    assert len(full) / SR == pytest.approx(49.5, abs=0.05)
    np.testing.assert_array_equal(head, full[: len(head)])
    assert full.dtype == np.float32 and np.abs(full).max() <= 1.0


def test_decoding_many_matches_one_by_one(voice_mp3):
    items = [voice_mp3, ffmpeg_transcode(voice_mp3, ".flac", "-c:a", "flac", "-t", "3")]
    together = decode_many_to_mono(items, SR, max_seconds=10.0)
    for data, decoded in zip(items, together, strict=True):
        np.testing.assert_array_equal(decoded, decode_to_mono(data, SR, max_seconds=10.0))
    assert decode_many_to_mono([], SR) == []
    with pytest.raises(AudioDecodeError):
        decode_many_to_mono([voice_mp3, b"not audio" * 100], SR)


def test_provider_mp3s_are_decoded_in_process_as_ffmpeg_decodes_them(voice_mp3, monkeypatch):
    """A voice provider's chunk (mono MP3 at the note's rate, with or without a LAME header)
    costs no ffmpeg start: the same samples, the same length (encoder delay dropped alike),
    the same bound."""
    voice = decode_to_mono(voice_mp3, SR)
    ours = encode_mp3(voice[: 8 * SR], SR, 128)  # no LAME header
    tagged = ffmpeg_transcode(voice_mp3, ".mp3", "-t", "8", "-ar", str(SR), "-c:a", "libmp3lame", "-b:a", "128k")
    by_ffmpeg = [decode_to_mono(item, SR, max_seconds=5.0) for item in (ours, tagged)]
    by_ffmpeg += [decode_to_mono(ours, SR)]

    def no_ffmpeg(*args, **kwargs):
        raise AssertionError("ffmpeg was started")

    monkeypatch.setattr("shared.audio.codec.subprocess.run", no_ffmpeg)
    in_process = decode_many_to_mono([ours, tagged], SR, max_seconds=5.0) + decode_many_to_mono([ours], SR)
    for got, expected in zip(in_process, by_ffmpeg, strict=True):
        assert got.dtype == np.float32 and len(got) == len(expected)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    monkeypatch.undo()
    # another rate or stereo: ffmpeg resamples and downmixes, as before
    stereo = ffmpeg_transcode(voice_mp3, ".mp3", "-t", "3", "-ac", "2", "-c:a", "libmp3lame")
    for item in (voice_mp3, stereo):
        np.testing.assert_array_equal(decode_many_to_mono([item], SR)[0], decode_to_mono(item, SR))


def test_mp3_keeps_the_loudness_of_its_pcm(voice_mp3):
    """LAME alone would hand back the voice 0.45 dB quieter at 128 kbit/s."""
    voice = decode_to_mono(voice_mp3, SR)
    assert 20 * np.log10(lame_gain(SR, 128)) == pytest.approx(-0.45, abs=0.1)
    decoded = decode_to_mono(encode_mp3(voice, SR, 128), SR)
    assert integrated_loudness(decoded, SR) == pytest.approx(integrated_loudness(voice, SR), abs=0.05)


def test_level_compensation_never_clips():
    """A sine at 0.99 has no room for LAME's +0.45 dB compensation: boosting it anyway would
    flatten its tops in the 16-bit conversion and grow a 3rd harmonic at about -40 dB."""
    t = np.arange(2 * SR) / SR
    hot = (0.99 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    decoded = decode_to_mono(encode_mp3(hot, SR, 128), SR)[4000:-4000]
    freqs, psd = signal.welch(decoded, SR, nperseg=8192)
    third = psd[np.argmin(np.abs(freqs - 3000))] / psd[np.argmin(np.abs(freqs - 1000))]
    assert 10 * np.log10(third) < -80.0


def test_pcm16_rounds_to_nearest_and_clips():
    pcm = to_pcm16(np.array([1.5, 1.0, -1.0, 0.7 / 32767, -0.7 / 32767, 0.3 / 32767], np.float32))
    assert pcm.tolist() == [32767, 32767, -32767, 1, -1, 0]
