"""The offline voice provider (espeak-ng shaped by a voiceprint) and the voiceprint itself.

Everything real: espeak-ng and ffmpeg run as subprocesses, state lives in the SecantusDB the
session started (a fresh database per test, dropped afterwards). What is checked is what a user
or an operator would notice: how many voices exist, which error comes back, whether the note
decodes, how long it is, and whether a deep voice is spoken deeper than a high one."""

from __future__ import annotations

import math
import os
import stat
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pymongo
import pytest
from scipy import signal

from shared.audio import codec
from shared.audio.voiceprint import Voiceprint, measure_voiceprint, track_pitch
from shared.errors import ProviderRejected, VoiceLimitReached, VoiceNotFound
from shared.providers.voice.base import RemoteVoice, VoiceProvider, VoiceSettings
from shared.providers.voice.local import (
    MODEL_ESPEAK,
    MODEL_PIPER,
    VOICES_COLLECTION,
    LocalVoiceProvider,
    detect_language,
    espeak_pitch,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "voice" / "sample_en_49s.mp3"

EN_SHORT = "See you on Thursday."
EN_LONG = ("Hi, it's me. I just wanted to tell you that the meeting moved to Thursday afternoon, "
           "so we have a little more time to finish the slides. Call me when you can, and take care.")
ES_LONG = ("Hola, soy yo. Quería decirte que la reunión se ha movido al jueves por la tarde, así que "
           "tenemos un poco más de tiempo para terminar las diapositivas. Llámame cuando puedas.")


# --------------------------------------------------------------------------- synthetic voices


def voice_like(f0: float, *, seconds: float = 6.0, sr: int = 22050, syllables_per_s: float = 4.0,
               intonation_st: float = 0.0, pause_every_s: float | None = None, seed: int = 0) -> np.ndarray:
    """A crude vowel stream: a glottal-like source (band-limited sawtooth, harmonics falling as
    1/k) through three formant resonators, amplitude-modulated into syllables, with optional
    slow intonation (+-`intonation_st` semitones) and 1-second pauses, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f_inst = f0 * 2.0 ** (intonation_st / 12.0 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f_inst) / sr
    n_harm = int(0.45 * sr / (f0 * 2 ** (abs(intonation_st) / 12)))
    source = sum(np.sin(k * phase) / k for k in range(1, n_harm + 1))
    x = source
    for formant, bandwidth in ((700.0, 90.0), (1220.0, 110.0), (2600.0, 160.0)):
        r = math.exp(-math.pi * bandwidth / sr)
        a = [1.0, -2 * r * math.cos(2 * math.pi * formant / sr), r * r]
        x = x + 0.6 * signal.lfilter([1.0 - r], a, source)
    envelope = (0.5 - 0.5 * np.cos(2 * np.pi * syllables_per_s * t)) ** 1.5
    if pause_every_s:
        envelope[(t % pause_every_s) >= pause_every_s - 1.0] = 0.0
    x = x * envelope
    x = 0.5 * x / np.max(np.abs(x)) + 0.001 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def as_mp3(samples: np.ndarray, sr: int = 22050) -> bytes:
    return codec.encode_mp3(samples, sr, 128)


def decoded(mp3: bytes, sr: int = 16000) -> np.ndarray:
    return codec.decode_to_mono(mp3, sr)


def spoken_f0(mp3: bytes) -> float:
    vp = measure_voiceprint(decoded(mp3), 16000)
    assert vp.f0_hz is not None, "the synthesized note has no measurable pitch"
    return vp.f0_hz


def duration_s(mp3: bytes) -> float:
    return len(decoded(mp3)) / 16000


# --------------------------------------------------------------------------- voiceprint


@pytest.mark.parametrize("f0", [120.0, 220.0])
def test_voiceprint_measures_pitch_and_syllable_rate_of_a_harmonic_vowel_stream(f0):
    sr = 16000
    t = np.arange(8 * sr) / sr
    harmonics = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(4000 / f0)))
    samples = 0.3 * harmonics * (0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t)) / np.max(np.abs(harmonics))

    vp = measure_voiceprint(samples, sr)

    assert vp.f0_hz == pytest.approx(f0, rel=0.05)
    assert vp.syllables_per_s == pytest.approx(4.0, rel=0.25)
    assert vp.f0_semitone_std < 0.5  # a steady tone has no intonation
    assert vp.speech_s == pytest.approx(8.0, abs=0.3)


@pytest.mark.parametrize("f0, rate", [(110.0, 3.0), (120.0, 4.0), (220.0, 4.0), (260.0, 6.0)])
def test_voiceprint_on_a_formant_filtered_glottal_source(f0, rate):
    # formants put most energy on the harmonics near 700 Hz: a naive autocorrelation peak
    # picker would report one of them instead of F0
    vp = measure_voiceprint(voice_like(f0, syllables_per_s=rate), 22050)

    assert vp.f0_hz == pytest.approx(f0, rel=0.05)
    assert vp.syllables_per_s == pytest.approx(rate, rel=0.25)


def test_voiceprint_tells_a_fast_talker_from_a_slow_one():
    slow = measure_voiceprint(voice_like(150.0, syllables_per_s=3.0), 22050)
    fast = measure_voiceprint(voice_like(150.0, syllables_per_s=6.0), 22050)
    assert fast.syllables_per_s > 1.6 * slow.syllables_per_s


def test_pauses_do_not_count_as_slow_speech():
    # 2 s of syllables then 1 s of silence, repeated: the articulation rate is still 4/s
    vp = measure_voiceprint(voice_like(150.0, seconds=9.0, pause_every_s=3.0), 22050)
    assert vp.speech_s == pytest.approx(6.0, abs=0.6)
    assert vp.syllables_per_s == pytest.approx(4.0, rel=0.25)


def test_voiceprint_spread_reflects_intonation():
    flat = measure_voiceprint(voice_like(180.0), 22050)
    lively = measure_voiceprint(voice_like(180.0, intonation_st=4.0), 22050)
    assert flat.f0_semitone_std < 0.5
    # a sinusoidal swing of +-4 semitones has a standard deviation of 4/sqrt(2) = 2.8
    assert lively.f0_semitone_std == pytest.approx(4 / math.sqrt(2), rel=0.3)
    assert lively.f0_hz == pytest.approx(180.0, rel=0.05)


def test_voiceprint_of_silence_and_noise_reports_no_pitch():
    rng = np.random.default_rng(1)
    for samples in (np.zeros(16000 * 3, np.float32), 0.05 * rng.standard_normal(16000 * 3)):
        vp = measure_voiceprint(samples, 16000)
        assert vp.f0_hz is None and vp.f0_semitone_std is None
    assert measure_voiceprint(np.zeros(100, np.float32), 16000) == Voiceprint(None, None, None, 0.0)


def test_voiceprint_does_not_depend_on_the_sample_rate():
    at_44k = measure_voiceprint(voice_like(140.0, sr=44100), 44100)
    at_16k = measure_voiceprint(voice_like(140.0, sr=16000), 16000)
    assert at_44k.f0_hz == pytest.approx(at_16k.f0_hz, rel=0.02)


def test_voiceprint_of_the_real_recording_is_an_adult_female_voice():
    samples = codec.decode_to_mono(FIXTURE.read_bytes(), 16000)
    vp = measure_voiceprint(samples, 16000)
    assert 150.0 <= vp.f0_hz <= 260.0
    assert 1.0 <= vp.f0_semitone_std <= 6.0  # people speak with intonation, within an octave
    assert 2.0 <= vp.syllables_per_s <= 7.0  # conversational speech is 3-6 syllables/s
    assert 25.0 <= vp.speech_s <= 49.0
    # most of the speech is voiced, and the pitch track is not a scatter of octave errors
    track = track_pitch(samples, 16000)
    assert track.voiced.mean() > 0.3


def test_voiceprint_is_fast_on_a_three_minute_sample():
    samples = np.tile(voice_like(130.0, seconds=10.0, sr=16000), 18)
    started = time.perf_counter()
    vp = measure_voiceprint(samples, 16000)
    assert time.perf_counter() - started < 5.0
    assert vp.f0_hz == pytest.approx(130.0, rel=0.05)


def test_voiceprint_round_trips_through_a_dict():
    vp = Voiceprint(f0_hz=201.5, f0_semitone_std=2.5, syllables_per_s=4.2, speech_s=41.0)
    assert Voiceprint.from_dict(vp.to_dict()) == vp
    assert Voiceprint.from_dict({"f0_hz": 99.0}) == Voiceprint(99.0, None, None, 0.0)
    assert Voiceprint.from_dict(None) == Voiceprint(None, None, None, 0.0)


# --------------------------------------------------------------------------- provider fixtures


@pytest.fixture()
def pdb(db):
    """A database of its own for each test (the session `db` is shared by the whole suite)."""
    name = f"nvlocal_{uuid.uuid4().hex[:10]}"
    database = db.client[name]
    yield database
    db.client.drop_database(name)


@pytest.fixture()
def provider(pdb) -> LocalVoiceProvider:
    return LocalVoiceProvider(pdb, voice_limit=3)


@pytest.fixture(scope="module")
def low_sample() -> bytes:
    return as_mp3(voice_like(100.0))


@pytest.fixture(scope="module")
def high_sample() -> bytes:
    return as_mp3(voice_like(240.0, seed=1))


@pytest.fixture(scope="module")
def short_sample() -> bytes:
    return as_mp3(voice_like(150.0, seconds=2.0))


# --------------------------------------------------------------------------- voices and slots


def test_provider_implements_the_port(provider):
    assert isinstance(provider, VoiceProvider)
    assert provider.name == "local"
    assert provider.model_id == MODEL_ESPEAK


def test_create_list_rename_delete_round_trip(provider, low_sample, high_sample):
    first = provider.create_voice("nv-user-1", low_sample, {"language": "en"})
    second = provider.create_voice("nv-user-2", high_sample)
    assert first.startswith("lv_") and first != second

    assert list(provider.list_voices()) == [
        RemoteVoice(first, "nv-user-1", "cloned", {"language": "en"}),
        RemoteVoice(second, "nv-user-2", "cloned", {}),
    ]

    provider.rename_voice(first, "nv-user-1-renamed")
    assert {v.voice_id: v.name for v in provider.list_voices()}[first] == "nv-user-1-renamed"

    provider.delete_voice(first)
    assert [v.voice_id for v in provider.list_voices()] == [second]
    with pytest.raises(VoiceNotFound):
        provider.delete_voice(first)
    with pytest.raises(VoiceNotFound):
        provider.rename_voice(first, "ghost")

    # the voiceprint measured at creation is what the voice will be shaped by
    assert provider.voiceprint(second).f0_hz == pytest.approx(240.0, rel=0.05)


def test_slot_limit_refuses_the_fourth_voice_until_one_is_deleted(pdb, short_sample):
    provider = LocalVoiceProvider(pdb, voice_limit=3)
    ids = [provider.create_voice(f"v{i}", short_sample) for i in range(3)]
    assert provider.subscription().voice_slots_used == 3

    with pytest.raises(VoiceLimitReached) as refused:
        provider.create_voice("v3", short_sample)
    assert refused.value.code == "VOICE_LIMIT_REACHED" and refused.value.provider == "local"
    assert len(list(provider.list_voices())) == 3

    # state is shared: another process's provider sees the same slots and frees one for all
    other_process = LocalVoiceProvider(pdb, voice_limit=3)
    other_process.delete_voice(ids[1])
    replacement = provider.create_voice("v3", short_sample)

    assert {v.voice_id for v in other_process.list_voices()} == {ids[0], ids[2], replacement}
    sub = other_process.subscription()
    assert (sub.voice_limit, sub.voice_slots_used) == (3, 3)
    with pytest.raises(VoiceLimitReached):
        other_process.create_voice("v4", short_sample)


def test_concurrent_creates_from_eight_threads_fill_exactly_the_limit(pdb, mongo_url, short_sample):
    # each thread has its own client and provider, as separate worker processes would
    clients = [pymongo.MongoClient(mongo_url, tz_aware=True) for _ in range(8)]
    try:
        for round_no in range(3):  # the race is probabilistic: run it a few times
            providers = [LocalVoiceProvider(c[pdb.name], voice_limit=3) for c in clients]
            barrier = threading.Barrier(len(providers))
            created: list[str] = []
            refused: list[Exception] = []
            unexpected: list[BaseException] = []

            def create(p: LocalVoiceProvider, i: int) -> None:
                try:
                    barrier.wait(timeout=30)
                    created.append(p.create_voice(f"race-{round_no}-{i}", short_sample))
                except VoiceLimitReached as exc:
                    refused.append(exc)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    unexpected.append(exc)

            threads = [threading.Thread(target=create, args=(p, i)) for i, p in enumerate(providers)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=120)

            assert not unexpected, unexpected
            assert len(created) == 3 and len(refused) == 5
            listed = {v.voice_id for v in providers[0].list_voices()}
            assert listed == set(created)
            slots = sorted(d["slot"] for d in pdb[VOICES_COLLECTION].find({}, {"slot": 1}))
            assert slots == [0, 1, 2]
            for voice_id in created:
                providers[0].delete_voice(voice_id)
    finally:
        for c in clients:
            c.close()


def test_a_lowered_limit_keeps_existing_voices_but_refuses_new_ones(pdb, short_sample):
    roomy = LocalVoiceProvider(pdb, voice_limit=4)
    for i in range(3):
        roomy.create_voice(f"v{i}", short_sample)
    tight = LocalVoiceProvider(pdb, voice_limit=2)
    with pytest.raises(VoiceLimitReached):
        tight.create_voice("one-too-many", short_sample)
    assert tight.subscription().voice_slots_used == 3


def test_an_undecodable_sample_is_rejected_and_takes_no_slot(provider):
    with pytest.raises(ProviderRejected):
        provider.create_voice("broken", b"this is not audio at all" * 100)
    with pytest.raises(ProviderRejected):
        provider.create_voice("empty", b"")
    assert provider.subscription().voice_slots_used == 0


# --------------------------------------------------------------------------- synthesis


def test_english_and_spanish_notes_are_mp3_that_grow_with_the_text(provider, high_sample):
    voice = provider.create_voice("speaker", high_sample)
    settings = VoiceSettings()

    short = provider.synthesize(EN_SHORT, voice, settings)
    long_en = provider.synthesize(EN_LONG, voice, settings)
    long_es = provider.synthesize(ES_LONG, voice, settings)

    for result, text in ((short, EN_SHORT), (long_en, EN_LONG), (long_es, ES_LONG)):
        info = codec.probe(result.audio)
        assert info.format_name == "mp3" and info.sample_rate == 44100 and info.channels == 1
        assert result.model_id == MODEL_ESPEAK
        assert result.characters == len(text) and result.character_cost is None
    assert duration_s(short.audio) > 0.8
    assert duration_s(long_en.audio) > 4 * duration_s(short.audio)
    assert duration_s(long_es.audio) > 4 * duration_s(short.audio)
    # the output is speech at a sensible level, not silence or clipping
    pcm = decoded(long_es.audio)
    assert 0.5 < np.max(np.abs(pcm)) <= 1.0
    assert provider.subscription().character_count == len(EN_SHORT) + len(EN_LONG) + len(ES_LONG)


def test_a_deep_voice_is_spoken_deeper_than_a_high_one(provider, low_sample, high_sample):
    low = provider.create_voice("deep", low_sample)
    high = provider.create_voice("high", high_sample)

    low_f0 = spoken_f0(provider.synthesize(EN_LONG, low, VoiceSettings()).audio)
    high_f0 = spoken_f0(provider.synthesize(EN_LONG, high, VoiceSettings()).audio)

    assert low_f0 < high_f0 / 1.6
    # the stand-in speaks at the speaker's own pitch (within 2 semitones), not just "lower"
    assert low_f0 == pytest.approx(100.0, rel=0.12)
    assert high_f0 == pytest.approx(240.0, rel=0.12)
    # in Spanish too
    es_low = spoken_f0(provider.synthesize(ES_LONG, low, VoiceSettings()).audio)
    es_high = spoken_f0(provider.synthesize(ES_LONG, high, VoiceSettings()).audio)
    assert es_low < es_high / 1.6


def test_the_real_recording_gets_a_female_voice(provider):
    female = provider.create_voice("fixture", FIXTURE.read_bytes())
    male = provider.create_voice("synthetic-110", as_mp3(voice_like(110.0)))

    female_f0 = spoken_f0(provider.synthesize(EN_LONG, female, VoiceSettings()).audio)
    male_f0 = spoken_f0(provider.synthesize(EN_LONG, male, VoiceSettings()).audio)

    assert 150.0 <= female_f0 <= 260.0
    assert female_f0 > 1.4 * male_f0
    assert female_f0 == pytest.approx(provider.voiceprint(female).f0_hz, rel=0.12)


def test_speed_setting_changes_the_pace_within_the_accepted_range(provider, short_sample):
    voice = provider.create_voice("pace", short_sample)
    slow = duration_s(provider.synthesize(EN_LONG, voice, VoiceSettings(speed=0.7)).audio)
    fast = duration_s(provider.synthesize(EN_LONG, voice, VoiceSettings(speed=1.2)).audio)
    too_fast = duration_s(provider.synthesize(EN_LONG, voice, VoiceSettings(speed=3.0)).audio)
    assert slow > 1.3 * fast
    assert too_fast == pytest.approx(fast, rel=0.05)  # clamped like ElevenLabs' 0.7-1.2


def test_unknown_or_deleted_voice_is_not_found(provider, short_sample):
    with pytest.raises(VoiceNotFound) as missing:
        provider.synthesize("Hello.", "lv_doesnotexist", VoiceSettings())
    assert missing.value.code == "VOICE_NOT_FOUND"
    voice = provider.create_voice("gone", short_sample)
    provider.delete_voice(voice)
    with pytest.raises(VoiceNotFound):
        provider.synthesize("Hello.", voice, VoiceSettings())
    assert provider.subscription().character_count == 0  # failures cost nothing


@pytest.mark.parametrize("text", [
    "--help",
    "--version",
    '-v fr "quoted" and \'single\' quotes; $(rm -rf /) `backticks` & | > < [[b\'Vt]]',
])
def test_option_like_and_shell_like_texts_are_spoken(provider, short_sample, text):
    voice = provider.create_voice("safe", short_sample)
    result = provider.synthesize(text, voice, VoiceSettings())
    # if espeak had taken the text as options it would print help or version text, not audio
    assert codec.probe(result.audio).format_name == "mp3"
    assert duration_s(result.audio) > 0.3
    assert spoken_f0(result.audio) > 0


def test_every_line_of_a_multi_line_text_is_spoken(provider, short_sample):
    voice = provider.create_voice("lines", short_sample)
    one_line = "The first thing. The second thing. The third thing. The fourth thing."
    many_lines = "The first thing.\nThe second thing.\r\nThe third thing.\n\n\"The fourth thing.\""
    single = duration_s(provider.synthesize(one_line, voice, VoiceSettings()).audio)
    multi = duration_s(provider.synthesize(many_lines, voice, VoiceSettings()).audio)
    first_only = duration_s(provider.synthesize("The first thing.", voice, VoiceSettings()).audio)
    assert multi == pytest.approx(single, rel=0.3)
    assert multi > 2.5 * first_only


def test_empty_and_oversized_texts_are_refused(provider, short_sample):
    voice = provider.create_voice("limits", short_sample)
    with pytest.raises(ValueError):
        provider.synthesize("  \n ", voice, VoiceSettings())
    with pytest.raises(ProviderRejected):
        provider.synthesize("word " * 3000, voice, VoiceSettings())
    assert provider.subscription().character_count == 0


@pytest.mark.parametrize("text, expected", [
    (EN_LONG, "en"),
    (ES_LONG, "es"),
    ("¿Qué tal?", "es"),
    ("No, I don't think so.", "en"),
    ("No, no lo creo.", "es"),
    ("Mañana", "es"),
    ("OK 12345", "en"),
])
def test_language_is_detected_from_the_text(text, expected):
    assert detect_language(text, "en") == expected


def test_language_default_decides_when_the_text_gives_no_hint():
    assert detect_language("OK 12345", "es") == "es"
    with pytest.raises(ValueError):
        LocalVoiceProvider(None, language_default="fr")  # type: ignore[arg-type]


def test_pitch_mapping_picks_a_variant_and_rises_with_f0():
    assert espeak_pitch(None) == (None, 50)
    assert espeak_pitch(100.0)[0] == "m3" and espeak_pitch(220.0)[0] == "f3"
    male = [espeak_pitch(f)[1] for f in (60, 80, 100, 130, 160)]
    female = [espeak_pitch(f)[1] for f in (170, 200, 250, 300, 400)]
    assert male == sorted(male) and female == sorted(female)
    assert male[0] == 0 and female[-1] == 99  # clamped to what espeak can do


# --------------------------------------------------------------------------- optional Piper path


def _install_stand_in_piper(bin_dir: Path) -> None:
    """A `piper` on PATH honouring the real CLI's contract (--model, --output_file,
    --length_scale, text on stdin) that renders with espeak-ng: it exercises how the provider
    calls Piper and reads its output, without a neural model in the test environment."""
    script = bin_dir / "piper"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import argparse, subprocess, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("--model", required=True)
        parser.add_argument("--output_file", required=True)
        parser.add_argument("--length_scale", type=float, default=1.0)
        args = parser.parse_args()
        open(args.model).close()  # the model must exist
        text = sys.stdin.read()
        assert text.count("\\n") == 1, "piper wants the whole text on one line"
        wpm = str(int(175 / args.length_scale))
        subprocess.run(["espeak-ng", "-w", args.output_file, "-s", wpm, "--stdin"],
                       input=text.encode(), check=True)
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_piper_is_used_when_a_model_and_the_executable_exist(pdb, tmp_path, monkeypatch, short_sample):
    models = tmp_path / "models"
    models.mkdir()
    (models / "en_US-test-medium.onnx").write_bytes(b"model")
    (models / "en_US-test-medium.onnx.json").write_text("{}")

    system_path = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"])  # espeak-ng, ffmpeg; no piper
    monkeypatch.setenv("PATH", system_path)
    assert LocalVoiceProvider(pdb, piper_model_dir=models).model_id == MODEL_ESPEAK

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _install_stand_in_piper(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{system_path}")
    provider = LocalVoiceProvider(pdb, piper_model_dir=models)
    assert provider.model_id == MODEL_PIPER

    voice = provider.create_voice("piper", short_sample)
    english = provider.synthesize("Line one.\nLine two.", voice, VoiceSettings())
    assert english.model_id == MODEL_PIPER
    assert codec.probe(english.audio).format_name == "mp3" and duration_s(english.audio) > 0.8
    # no Spanish model configured: Spanish falls back to espeak-ng
    assert provider.synthesize(ES_LONG, voice, VoiceSettings()).model_id == MODEL_ESPEAK
