"""Perform side: sentence joins, the fan bed, the mix and the rendered note."""

from __future__ import annotations

import itertools

import numpy as np
import pyloudnorm
import pytest
from scipy import signal

from shared.audio.bed import brown_noise
from shared.audio.codec import decode_to_mono, encode_mp3
from shared.audio.edit import apply_fades
from shared.audio.loudness import integrated_loudness, true_peak_dbtp
from shared.audio.mix import (
    BED_MAX_DB,
    BED_MIN_DB,
    NOTE_MP3_QUALITY,
    bed_level_db,
    join_chunks,
    loop_to_length,
    mix_with_fan,
    render_note,
)
from shared.audio.normalize import normalize_loudness
from shared.audio.vad import audible_span
from tests.audio.helpers import SR, wav_bytes

TARGET, CEILING = -16.0, -1.5
MP3_PEAK_TOLERANCE_DB = 0.5


@pytest.fixture(scope="module")
def voice(voice_mp3) -> np.ndarray:
    return decode_to_mono(voice_mp3, SR)


@pytest.fixture(scope="module")
def harsh_chunks(voice) -> list[np.ndarray]:
    """Three pieces of the recording cut mid-word at the worst places: the first ends on a
    positive crest, the next starts on a negative one. Butted together they click."""
    cuts = []
    for around in (10.0, 20.0):
        window = voice[int(around * SR): int(around * SR) + SR // 2]
        crest = int(around * SR) + int(np.argmax(window))
        trough = int(around * SR) + int(np.argmin(window))
        cuts.append((crest + 1, trough))
    return [voice[: cuts[0][0]], voice[cuts[0][1]: cuts[1][0]], voice[cuts[1][1]: 30 * SR]]


@pytest.fixture(scope="module")
def chunk_mp3s(voice) -> list[bytes]:
    """A 30 s note as a TTS provider would send it: three MP3 sentences."""
    return [encode_mp3(part, SR, 128) for part in np.array_split(voice[: 30 * SR], 3)]


def steepest_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x)).max())


# --- joining sentences ----------------------------------------------------------------------

@pytest.mark.parametrize("pause_ms", [250.0, 0.0])
def test_join_has_no_click(harsh_chunks, pause_ms):
    within = max(steepest_step(c) for c in harsh_chunks)
    butted = np.concatenate(harsh_chunks)
    butt_joins = np.cumsum([len(c) for c in harsh_chunks[:-1]])
    assert max(abs(butted[j] - butted[j - 1]) for j in butt_joins) > within  # the naive join clicks

    joined = join_chunks(harsh_chunks, SR, pause_ms=pause_ms)
    # where each chunk ends in the output (join_chunks trims them to their audible span)
    lengths = [end - start for start, end in (audible_span(c, SR) for c in harsh_chunks)]
    fade, gap = round(0.010 * SR), round(pause_ms * 1e-3 * SR)
    for i in range(1, len(lengths)):
        if pause_ms > 0:  # chunk i-1 ends, `gap` of silence, chunk i starts
            first = sum(lengths[:i]) + (i - 1) * gap
            region = slice(first - 3 * fade, first + gap + 3 * fade)
        else:  # chunk i overlaps the last `fade` samples of chunk i-1
            last = sum(lengths[:i]) - (i - 1) * fade
            region = slice(last - 4 * fade, last + 3 * fade)
        assert steepest_step(joined[region]) <= within
    assert len(joined) == sum(lengths) + (len(lengths) - 1) * (gap if pause_ms > 0 else -fade)


def test_join_inserts_a_sentence_pause(voice):
    sentence = voice[SR: 3 * SR]
    padded = np.concatenate([np.zeros(SR, np.float32), sentence, np.zeros(SR, np.float32)])
    joined = join_chunks([padded, padded], SR, pause_ms=250.0)
    # TTS padding of 1 s on each side is trimmed to 30 ms margins around the audible part
    one = audible_span(padded, SR)
    assert len(joined) == 2 * (one[1] - one[0]) + round(0.25 * SR)


def test_join_skips_silent_chunks(voice):
    sentence = voice[SR: 3 * SR]
    joined = join_chunks([sentence, np.zeros(SR, np.float32), sentence], SR, pause_ms=0.0)
    assert len(joined) < 2 * len(sentence)
    assert len(join_chunks([np.zeros(SR, np.float32)], SR)) == 0


# --- the fan bed ----------------------------------------------------------------------------

def test_brown_noise_is_soft_and_deterministic():
    bed = brown_noise(10.0, SR, seed=3)
    assert len(bed) == 10 * SR and bed.dtype == np.float32
    np.testing.assert_array_equal(bed, brown_noise(10.0, SR, seed=3))
    assert not np.array_equal(bed, brown_noise(10.0, SR, seed=4))
    assert 10 * np.log10(np.mean(bed.astype(np.float64) ** 2)) == pytest.approx(-20.0, abs=0.01)
    assert abs(float(np.mean(bed))) < 0.005  # no DC

    freqs, psd = signal.welch(bed, SR, nperseg=8192)

    def level(f):
        return 10 * np.log10(psd[np.argmin(np.abs(freqs - f))])

    assert level(150) - level(1500) == pytest.approx(20.0, abs=3.0)  # -6 dB/octave: brown
    assert level(15) < level(80) - 6.0  # rumble below 40 Hz removed
    assert level(8000) < level(1500) - 25.0  # no hiss


def test_fan_loop_is_repeated_without_a_jump():
    loop = brown_noise(2.0, SR, seed=1)
    long = loop_to_length(loop, 7 * SR, SR)
    assert len(long) == 7 * SR
    assert steepest_step(long) <= steepest_step(loop) * np.sqrt(2)
    np.testing.assert_array_equal(loop_to_length(loop, SR, SR), loop[:SR])


# --- the mix --------------------------------------------------------------------------------

@pytest.mark.parametrize("volume", [0.0, 0.5, 1.0])
def test_bed_sits_at_the_set_level_under_the_voice(voice, volume):
    v = voice[: 10 * SR]
    out = mix_with_fan(v, SR, add_background=True, background_volume=volume, lead_in_s=1.0, tail_s=1.0)
    assert len(out) == len(v) + 2 * SR
    fade = round(0.010 * SR)
    bed = out.copy()
    bed[SR: SR + len(v)] -= apply_fades(v, fade, fade)
    steady = bed[SR: SR + len(v)]  # full level, past the fades
    relative = integrated_loudness(steady, SR) - integrated_loudness(v, SR)
    assert relative == pytest.approx(bed_level_db(volume), abs=0.5)
    assert bed_level_db(0.0) == BED_MIN_DB and bed_level_db(1.0) == BED_MAX_DB


def test_bed_plays_before_the_voice_and_fades_in(voice):
    v = voice[: 10 * SR]
    out = mix_with_fan(v, SR, add_background=True, background_volume=1.0, lead_in_s=2.0, fade_s=0.8)
    assert abs(out[0]) < 1e-4 and abs(out[-1]) < 1e-4  # faded in and out
    ramp = out[: int(0.8 * SR)]
    assert np.abs(ramp[: SR // 10]).max() < np.abs(ramp[-SR // 10:]).max() / 4
    lead = out[int(0.8 * SR): 2 * SR]  # bed at full level, voice not started yet
    relative = integrated_loudness(lead, SR) - integrated_loudness(v, SR)
    assert relative == pytest.approx(BED_MAX_DB, abs=1.0)


def test_without_background_the_voice_stands_alone(voice):
    v = voice[: 10 * SR]
    out = mix_with_fan(v, SR, add_background=False, background_volume=1.0)
    assert len(out) == len(v)
    fade = round(0.010 * SR)
    np.testing.assert_allclose(out, apply_fades(v, fade, fade))
    assert out[0] == pytest.approx(0.0, abs=1e-4)


def test_fan_loop_is_used_and_looped(voice):
    v = voice[: 5 * SR]
    loop = brown_noise(1.5, SR, seed=9)
    out = mix_with_fan(v, SR, add_background=True, background_volume=0.5, fan_loop=loop)
    assert len(out) == len(v) + 2 * SR
    assert np.sqrt(np.mean(out[int(0.85 * SR): SR] ** 2)) > 1e-4


@pytest.mark.parametrize("volume", [-0.1, 1.5, float("nan")])
def test_volume_outside_zero_to_one_is_refused(voice, volume):
    with pytest.raises(ValueError):
        mix_with_fan(voice[:SR], SR, add_background=True, background_volume=volume)


# --- the rendered note ----------------------------------------------------------------------

def joined_length_s(chunk_mp3s) -> float:
    return len(join_chunks([decode_to_mono(c, SR) for c in chunk_mp3s], SR)) / SR


def test_rendered_note_with_background(chunk_mp3s):
    note = render_note(chunk_mp3s, add_background=True, background_volume=0.5, fan_loop_path=None)
    decoded = decode_to_mono(note.mp3, SR)
    expected_s = joined_length_s(chunk_mp3s) + 1.0 + 1.0
    assert note.duration_s == pytest.approx(expected_s, abs=0.01)
    assert len(decoded) / SR == pytest.approx(expected_s, abs=0.1)  # + encoder delay/padding

    assert note.loudness_lufs == pytest.approx(TARGET, abs=0.2)
    assert integrated_loudness(decoded, SR) == pytest.approx(TARGET, abs=1.0)
    assert pyloudnorm.Meter(SR).integrated_loudness(decoded.astype(np.float64)) == pytest.approx(TARGET, abs=1.0)
    assert note.true_peak_dbtp <= CEILING + 1e-3
    assert true_peak_dbtp(decoded) <= CEILING + MP3_PEAK_TOLERANCE_DB

    lead = decoded[int(0.3 * SR): int(0.9 * SR)]  # before the voice: the fan alone
    assert 20 * np.log10(np.sqrt(np.mean(lead.astype(np.float64) ** 2))) > -50.0


def test_rendered_note_without_background(chunk_mp3s):
    note = render_note(chunk_mp3s, add_background=False, background_volume=0.5, fan_loop_path=None)
    decoded = decode_to_mono(note.mp3, SR)
    assert note.duration_s == pytest.approx(joined_length_s(chunk_mp3s), abs=0.01)
    assert integrated_loudness(decoded, SR) == pytest.approx(TARGET, abs=1.0)
    assert true_peak_dbtp(decoded) <= CEILING + MP3_PEAK_TOLERANCE_DB
    # no bed anywhere: the pauses between sentences are (coded) digital silence
    gaps = decoded[np.abs(decoded) < 1e-6]
    assert len(gaps) > 0.2 * SR


def test_rendered_note_with_a_fan_recording(chunk_mp3s, tmp_path):
    fan = tmp_path / "fan.wav"
    fan.write_bytes(wav_bytes(brown_noise(4.0, 48000, seed=2), sr=48000))
    note = render_note(chunk_mp3s, add_background=True, background_volume=1.0, fan_loop_path=str(fan))
    decoded = decode_to_mono(note.mp3, SR)
    assert note.loudness_lufs == pytest.approx(TARGET, abs=0.2)
    assert integrated_loudness(decoded, SR) == pytest.approx(TARGET, abs=1.0)
    lead = decoded[int(0.3 * SR): int(0.9 * SR)]
    assert 20 * np.log10(np.sqrt(np.mean(lead.astype(np.float64) ** 2))) > -40.0


def _coding_error_by_band(reference: np.ndarray, mp3: bytes) -> tuple[float, np.ndarray]:
    """(SNR in dB, and the coding error's energy under the signal's in each band up to
    13.5 kHz, in dB) of an MP3 against the PCM it was encoded from."""
    decoded = decode_to_mono(mp3, SR).astype(np.float64)
    ref = reference.astype(np.float64)
    # LAME's encoder delay: found, not assumed
    lag = int(np.argmax(signal.correlate(decoded[: 4 * SR], ref[SR: 2 * SR], mode="valid"))) - SR
    decoded = decoded[lag: lag + len(ref)]
    ref = ref[: len(decoded)]
    error = ref - decoded
    freqs, _, spec = signal.stft(ref, SR, nperseg=1024)
    _, _, err = signal.stft(error, SR, nperseg=1024)
    edges = [50, 250, 500, 1000, 2000, 3000, 4000, 5500, 7000, 8500, 10500, 13500]
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in itertools.pairwise(edges)]
    under = np.array([10 * np.log10(np.sum(np.abs(err[b]) ** 2) / np.sum(np.abs(spec[b]) ** 2)) for b in bands])
    return 10 * np.log10(np.sum(ref ** 2) / np.sum(error ** 2)), under


@pytest.mark.parametrize("volume", [0.0, 1.0])
def test_note_mp3_codes_speech_over_the_bed_as_faithfully_as_lames_default(chunk_mp3s, volume):
    """The note's faster LAME setting loses nothing LAME's default (quality 3) keeps: at
    128 kbit/s for one channel the bits are ample, and skipping the noise-shaping loop leaves
    the coding error as low in every band a listener hears speech in."""
    voice = join_chunks([decode_to_mono(c, SR) for c in chunk_mp3s], SR)
    mixed = mix_with_fan(voice, SR, add_background=True, background_volume=volume)
    pcm = normalize_loudness(mixed, SR, TARGET, CEILING).samples
    snr, ours = _coding_error_by_band(pcm, encode_mp3(pcm, SR, 128, quality=NOTE_MP3_QUALITY))
    _, default = _coding_error_by_band(pcm, encode_mp3(pcm, SR, 128, quality=3))
    assert snr > 38.0
    assert np.all(ours < -12.0)
    assert np.all(ours <= default + 1.0), (ours.round(1), default.round(1))


def test_render_refuses_nothing_to_say():
    with pytest.raises(ValueError):
        render_note([], add_background=True, background_volume=0.5, fan_loop_path=None)
    silent = encode_mp3(np.zeros(2 * SR, np.float32), SR, 128)
    with pytest.raises(ValueError):
        render_note([silent], add_background=True, background_volume=0.5, fan_loop_path=None)
    with pytest.raises(ValueError):
        render_note([b"<html>502 Bad Gateway</html>"], add_background=False, background_volume=0.5,
                    fan_loop_path=None)


def test_a_fan_recording_that_is_not_audio_is_a_configuration_fault(chunk_mp3s, tmp_path):
    # Not a ValueError: perform reads those as the provider's unusable audio, and a broken
    # FAN_LOOP_PATH must not be blamed on the provider (nor on the user's sample).
    fan = tmp_path / "fan.mp3"
    fan.write_bytes(b"not a fan recording\n" * 100)
    with pytest.raises(RuntimeError, match="fan loop .*fan.mp3 cannot be decoded") as caught:
        render_note(chunk_mp3s, add_background=True, background_volume=0.5, fan_loop_path=str(fan))
    assert not isinstance(caught.value, ValueError)
