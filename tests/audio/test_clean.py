"""clean_sample on the real voice recording and on variants a user could upload."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pyloudnorm
import pytest

from shared.audio.clean import SampleRules, clean_sample
from shared.audio.codec import decode_to_mono
from shared.audio.loudness import integrated_loudness, true_peak_dbtp
from shared.errors import (
    SampleClipped,
    SampleTooLong,
    SampleTooQuiet,
    SampleTooShort,
    SampleUnsupported,
)
from tests.audio.helpers import (
    FIXTURE_SR,
    SR,
    ffmpeg_transcode,
    longest_silence_s,
    quietest_point,
    wav_bytes,
    white_noise,
    with_noise,
)

RULES = SampleRules()
#: MP3 coding reshapes the waveform; its decoded true peak may sit a little above the PCM's
MP3_PEAK_TOLERANCE_DB = 0.5


def assert_accepted(result, rules: SampleRules = RULES) -> np.ndarray:
    """What every accepted sample must satisfy; returns the decoded upload MP3."""
    report = result.report
    assert abs(report.loudness_after_lufs - rules.target_lufs) <= 0.5
    assert report.true_peak_dbtp <= rules.true_peak_dbtp + 0.01
    assert report.speech_s >= rules.min_speech_s
    assert 0.0 < report.speech_ratio <= 1.0
    assert report.duration_after_s <= report.duration_before_s
    assert report.sample_rate == SR
    assert len(result.sha256) == 64 and int(result.sha256, 16) >= 0
    json.dumps(report.to_dict())  # storable as-is on the job record

    decoded = decode_to_mono(result.mp3, SR)
    assert abs(len(decoded) / SR - result.duration_s) < 0.1
    assert abs(integrated_loudness(decoded, SR) - rules.target_lufs) <= 0.5
    assert true_peak_dbtp(decoded) <= rules.true_peak_dbtp + MP3_PEAK_TOLERANCE_DB
    return decoded


# --- the real recording ---------------------------------------------------------------------

def test_fixture_is_accepted_and_sounds_right(cleaned_fixture):
    decoded = assert_accepted(cleaned_fixture)
    report = cleaned_fixture.report
    assert report.format == "mp3/mp3"
    assert 40.0 <= report.duration_after_s <= 50.0
    assert abs(report.duration_before_s - 49.5) < 0.1
    assert report.snr_db > 35.0  # a clean read recording
    assert report.clipping_ratio < 0.001
    # an independent meter agrees with ours on the upload
    assert abs(pyloudnorm.Meter(SR).integrated_loudness(decoded.astype(np.float64)) - RULES.target_lufs) <= 0.5


def test_stages_are_reported_in_order(voice_mp3):
    stages: list[str] = []
    clean_sample(voice_mp3, on_stage=stages.append)
    assert stages == ["decoding", "normalizing", "checking"]


def test_same_upload_gives_same_hash_and_bytes(voice_mp3, cleaned_fixture):
    again = clean_sample(voice_mp3)
    assert again.sha256 == cleaned_fixture.sha256
    assert again.mp3 == cleaned_fixture.mp3


def test_different_upload_gives_different_hash(voice_pcm, cleaned_fixture):
    shorter = clean_sample(wav_bytes(voice_pcm[: 40 * FIXTURE_SR]))
    assert shorter.sha256 != cleaned_fixture.sha256


# --- accepted variants ----------------------------------------------------------------------

FORMATS = {
    "wav": (".wav", ["-c:a", "pcm_s16le"], "wav/pcm_s16le"),
    "ogg-opus": (".ogg", ["-c:a", "libopus", "-b:a", "48k"], "ogg/opus"),
    "webm-opus": (".webm", ["-c:a", "libopus", "-b:a", "48k"], "matroska,webm/opus"),
    "flac": (".flac", ["-c:a", "flac"], "flac/flac"),
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "96k"], "mov,mp4,m4a,3gp,3g2,mj2/aac"),
}


@pytest.mark.parametrize("name", FORMATS)
def test_other_containers_are_accepted(name, voice_mp3, cleaned_fixture):
    suffix, args, expected_format = FORMATS[name]
    result = clean_sample(ffmpeg_transcode(voice_mp3, suffix, *args))
    assert_accepted(result)
    assert result.report.format == expected_format
    # same speech, same trim, whatever the container
    assert abs(result.duration_s - cleaned_fixture.duration_s) < 0.3


def test_silence_padding_is_trimmed(voice_pcm, cleaned_fixture):
    pad = np.zeros(10 * FIXTURE_SR, dtype=np.float32)
    result = clean_sample(wav_bytes(np.concatenate([pad, voice_pcm, pad])))
    assert_accepted(result)
    assert abs(result.report.duration_before_s - (len(voice_pcm) / FIXTURE_SR + 20.0)) < 0.05
    # the 20 s of padding are gone: back to the length of the original speech
    assert abs(result.duration_s - cleaned_fixture.duration_s) < 0.3
    assert abs(result.report.speech_s - cleaned_fixture.report.speech_s) < 0.5


def test_room_tone_padding_is_trimmed(voice_pcm, cleaned_fixture):
    """Real recorders never give digital silence: pad with hiss at -65 dBFS instead."""
    pad = white_noise(10 * FIXTURE_SR, -65.0, seed=3)
    tone = white_noise(len(voice_pcm), -65.0, seed=4)
    result = clean_sample(wav_bytes(np.concatenate([pad, voice_pcm + tone, pad])))
    assert_accepted(result)
    assert abs(result.duration_s - cleaned_fixture.duration_s) < 0.5


def test_long_inner_pause_is_shortened(voice_pcm, cleaned_fixture):
    at = quietest_point(voice_pcm, FIXTURE_SR, 20.0, 30.0)  # inside a natural pause
    pause = white_noise(3 * FIXTURE_SR, -75.0, seed=5)
    result = clean_sample(wav_bytes(np.concatenate([voice_pcm[:at], pause, voice_pcm[at:]])))
    decoded = assert_accepted(result)
    assert result.report.duration_before_s == pytest.approx(cleaned_fixture.report.duration_before_s + 3.0, abs=0.01)
    # the 3.x s pause now lasts about max_inner_pause_s: most of the inserted 3 s is gone,
    # but the pause was not removed outright
    added = result.duration_s - cleaned_fixture.duration_s
    assert 0.2 < added < RULES.max_inner_pause_s
    assert longest_silence_s(decoded, SR) <= RULES.max_inner_pause_s + 0.1


def test_pause_shortening_follows_the_rule(voice_pcm):
    at = quietest_point(voice_pcm, FIXTURE_SR, 20.0, 30.0)
    pause = white_noise(4 * FIXTURE_SR, -75.0, seed=6)
    data = wav_bytes(np.concatenate([voice_pcm[:at], pause, voice_pcm[at:]]))
    relaxed = clean_sample(data, SampleRules(max_inner_pause_s=2.0))
    strict = clean_sample(data, SampleRules(max_inner_pause_s=0.5))
    assert relaxed.duration_s - strict.duration_s == pytest.approx(1.5, abs=0.3)
    assert longest_silence_s(decode_to_mono(relaxed.mp3, SR), SR) == pytest.approx(2.0, abs=0.3)


def test_moderate_background_noise_is_accepted_with_lower_snr(voice_pcm, cleaned_fixture):
    result = clean_sample(wav_bytes(with_noise(voice_pcm, snr_db=30.0)))
    assert_accepted(result)
    assert 25.0 < result.report.snr_db < cleaned_fixture.report.snr_db - 10.0


def test_hot_but_clean_recording_is_not_called_clipped(voice_pcm):
    """Peak-normalised to -0.1 dBFS: loud, but nothing is flattened."""
    hot = voice_pcm / np.abs(voice_pcm).max() * 10 ** (-0.1 / 20)
    result = clean_sample(wav_bytes(hot, subtype="FLOAT"))
    assert_accepted(result)
    assert result.report.clipping_ratio < 0.001


def test_quiet_but_usable_recording_is_raised_to_target(voice_pcm):
    result = clean_sample(wav_bytes(voice_pcm * 10 ** (-20 / 20), subtype="FLOAT"))
    assert_accepted(result)
    assert result.report.loudness_before_lufs < -40.0


# --- rejected variants ----------------------------------------------------------------------

def first_number(message: str) -> float:
    """The first number quoted in a message (the measured value comes first)."""
    return float(re.search(r"-?\d+(?:\.\d+)?", message).group())


def rejection(data: bytes, error: type, rules: SampleRules = RULES):
    with pytest.raises(error) as info:
        clean_sample(data, rules)
    return info.value


def test_ten_seconds_is_too_short(voice_pcm):
    err = rejection(wav_bytes(voice_pcm[: 10 * FIXTURE_SR]), SampleTooShort)
    assert err.code == "SAMPLE_TOO_SHORT"
    assert "10.0 s" in err.message and "30 s" in err.message
    assert err.details["report"]["duration_before_s"] == pytest.approx(10.0, abs=0.01)


def test_too_little_speech_is_too_short(voice_pcm):
    """35 s long, but only ~15 s of it is speech."""
    silence = np.zeros(20 * FIXTURE_SR, dtype=np.float32)
    err = rejection(wav_bytes(np.concatenate([voice_pcm[: 15 * FIXTURE_SR], silence])), SampleTooShort)
    speech = err.details["report"]["speech_s"]
    assert 12.0 < speech < 16.0
    assert "s of speech" in err.message and "at least 20 s" in err.message
    assert first_number(err.message) == pytest.approx(speech, abs=0.06)


def test_over_three_minutes_is_too_long(voice_pcm):
    looped = np.tile(voice_pcm, 5)[: 200 * FIXTURE_SR]
    err = rejection(wav_bytes(looped), SampleTooLong)
    assert err.code == "SAMPLE_TOO_LONG"
    assert "200.0 s" in err.message and "180 s" in err.message


def test_decompression_bomb_is_rejected_without_decoding_it_all(tmp_path):
    """A small FLAC declaring two hours of digital silence; decoding it all would mean
    2 h x 44.1 kHz x 4 bytes = 1.3 GB of PCM."""
    bomb = tmp_path / "bomb.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "7200", "-c:a", "flac", str(bomb)], check=True)
    assert bomb.stat().st_size < 2_000_000
    err = rejection(bomb.read_bytes(), (SampleTooLong, SampleTooQuiet))
    assert err.code in ("SAMPLE_TOO_LONG", "SAMPLE_TOO_QUIET")
    assert "7200.0 s" in err.message


@pytest.mark.parametrize("encode", ["wav", "mp3"])
def test_heavily_clipped_recording_is_rejected(voice_pcm, encode):
    """+20 dB into a recorder: flat tops as PCM, rounded ripples once coded as MP3."""
    data = wav_bytes(voice_pcm * 10.0)
    if encode == "mp3":
        data = ffmpeg_transcode(data, ".mp3", "-b:a", "128k")
    err = rejection(data, SampleClipped)
    ratio = err.details["report"]["clipping_ratio"]
    assert ratio > 0.05
    assert first_number(err.message) == pytest.approx(100 * ratio, abs=0.06)
    assert "at most 1%" in err.message


def test_near_silent_recording_is_too_quiet(voice_pcm):
    err = rejection(wav_bytes(voice_pcm * 10 ** (-60 / 20)), SampleTooQuiet)
    assert err.code == "SAMPLE_TOO_QUIET"
    assert "LUFS" in err.message and "-50 LUFS" in err.message
    # the measured level is quoted: about 60 dB under the fixture's -22 LUFS
    assert -86.0 < first_number(err.message) < -78.0


def test_digital_silence_is_too_quiet():
    err = rejection(wav_bytes(np.zeros(40 * FIXTURE_SR, dtype=np.float32)), SampleTooQuiet)
    assert "silent" in err.message


def test_voice_drowned_in_noise_is_rejected(voice_pcm):
    err = rejection(wav_bytes(with_noise(voice_pcm, snr_db=0.0)), SampleTooQuiet)
    snr = err.details["report"]["snr_db"]
    assert snr < RULES.min_snr_db
    assert "dB above the background noise" in err.message and "at least 15 dB" in err.message
    assert first_number(err.message) == pytest.approx(snr, abs=0.06)


@pytest.mark.parametrize("name, make", [
    ("zero bytes", lambda mp3: b""),
    ("random bytes", lambda mp3: np.random.default_rng(1234).bytes(200_000)),
    ("text renamed .mp3", lambda mp3: b"Dear diary, today I recorded my voice.\n" * 2000),
    ("truncated mp3", lambda mp3: mp3[: len(mp3) // 4]),
    ("truncated m4a", lambda mp3: ffmpeg_transcode(mp3, ".m4a", "-c:a", "aac")[:100_000]),
    ("header only", lambda mp3: mp3[:2000]),
])
def test_unreadable_uploads_are_unsupported(name, make, voice_mp3):
    err = rejection(make(voice_mp3), SampleUnsupported)
    assert err.code == "SAMPLE_UNSUPPORTED"
    assert err.message and err.action


def test_truncated_upload_says_how_much_survived(voice_mp3):
    err = rejection(voice_mp3[: len(voice_mp3) // 4], SampleUnsupported)
    assert "49.5 s" in err.message and "cut off" in err.message
    assert 10.0 < err.details["decoded_duration_s"] < 14.0
