"""Benchmark: speaker embedding speed, and what the speaker checks add to clone-sample cleaning.

Input: the voice fixture looped to 60 s as MP3 (as bench/clone_dsp.py). Measured, pinned to one
core with one BLAS thread, in CPU seconds, the sides taking turns within each round:

* value: the speaker analysis of the sample's speech (shared.audio.speaker.checks: resample to
  16 kHz, mel frames, LSTM over edge-to-edge 1.6 s windows), as x real time of speech;
* resemblyzer_rate_x: the same audio embedded with resemblyzer's overlapping windows (1.3 per
  second), the rate `embed_utterance` uses by default;
* baseline: clean_sample without the speaker analysis (the analysis swapped for its result,
  computed beforehand), x real time of the upload; `ratio` is clean_sample with the analysis
  over without it, so 1.20 would be the 20 % the issue allows;
* all_checks_ratio: clean_sample with both issue 17 checks over without either (the
  mostly-speech check, shared.audio.speechlike, swapped for its result too), and
  speech_check_cpu_s, that check alone: it is a check of its own, outside the 20 % the issue
  gives the embedding;
* scores: the voice match scale (docs/VOICE_MATCH.md) on three pairs: one speaker's two halves,
  that speaker against the offline stand-in's rendering of the calibration phrase (espeak-ng
  shaped to the speaker's pitch and pace, as the local provider does), and two real speakers.

Prints one JSON line. Usage: python bench/speaker_embedding.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402

from bench.clone_dsp import SAMPLE_S, looped_sample  # noqa: E402
from bench.cpu_time import interleaved  # noqa: E402
from shared.audio import clean  # noqa: E402
from shared.audio.codec import decode_to_mono  # noqa: E402
from shared.audio.speaker.checks import analyse_speech, speech_only  # noqa: E402
from shared.audio.speaker.encoder import cosine, embed_utterance, encoder_input  # noqa: E402
from shared.audio.speaker.match import CALIBRATION_PHRASE, match_score, speech_embedding  # noqa: E402
from shared.audio.speechlike import speech_likeness  # noqa: E402
from shared.audio.vad import detect_speech  # noqa: E402
from shared.audio.voiceprint import measure_voiceprint  # noqa: E402
from shared.providers.voice.local import espeak_pitch, espeak_wpm  # noqa: E402

TARGET_X_REALTIME = 50.0
MAX_CLONE_SLOWDOWN = 1.20
FIXTURES = REPO / "fixtures" / "voice"
SCORE_SR = 16000


def stand_in_rendering(voice: np.ndarray) -> np.ndarray:
    """The calibration phrase as the local stand-in speaks it for this voice."""
    traits = measure_voiceprint(voice, SCORE_SR)
    variant, pitch = espeak_pitch(traits.f0_hz)
    wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en" + (f"+{variant}" if variant else ""), "-p", str(pitch),
                          "-s", str(espeak_wpm(traits.syllables_per_s)), CALIBRATION_PHRASE],
                         capture_output=True, check=True).stdout
    return decode_to_mono(wav, SCORE_SR)


def score_table() -> dict:
    one = decode_to_mono((FIXTURES / "sample_en_49s.mp3").read_bytes(), SCORE_SR)
    other = decode_to_mono((FIXTURES / "librivox_austen_25s.mp3").read_bytes(), SCORE_SR)
    half = len(one) // 2
    whole = speech_embedding(one, SCORE_SR)
    pairs = {
        "same speaker, two halves": (speech_embedding(one[:half], SCORE_SR), speech_embedding(one[half:], SCORE_SR)),
        "same speaker vs the stand-in's rendering": (whole, speech_embedding(stand_in_rendering(one), SCORE_SR)),
        "two different speakers": (whole, speech_embedding(other, SCORE_SR)),
    }
    return {name: match_score(cosine(a, b)).to_dict() for name, (a, b) in pairs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 3 if args.quick else 7

    rules = clean.SampleRules()
    data = looped_sample(SAMPLE_S)
    samples = decode_to_mono(data, rules.sample_rate)
    speech = speech_only(samples, detect_speech(samples, rules.sample_rate).padded_regions(0.0, 0.2))
    speech_s = len(speech) / rules.sample_rate
    known = analyse_speech(speech, rules.sample_rate)  # also the warm-up: weights loaded once
    wav16k = encoder_input(speech, rules.sample_rate)
    likeness = speech_likeness(speech, rules.sample_rate)
    real_analysis, real_likeness = clean.analyse_speech, clean.speech_likeness

    def clean_without(*, likeness_too: bool):
        clean.analyse_speech = lambda _speech, _sr: known
        if likeness_too:
            clean.speech_likeness = lambda _speech, _sr: likeness
        try:
            clean.clean_sample(data, rules)
        finally:
            clean.analyse_speech, clean.speech_likeness = real_analysis, real_likeness

    clean.clean_sample(data, rules)
    (_, analysis_cpu), (_, overlapping_cpu), (_, with_cpu), (_, without_cpu), (_, bare_cpu), (_, speech_cpu) = \
        interleaved([
            lambda: analyse_speech(speech, rules.sample_rate),
            lambda: embed_utterance(wav16k),
            lambda: clean.clean_sample(data, rules),
            lambda: clean_without(likeness_too=False),
            lambda: clean_without(likeness_too=True),
            lambda: speech_likeness(speech, rules.sample_rate),
        ], runs)

    value = speech_s / analysis_cpu
    slowdown = with_cpu / without_cpu
    print(json.dumps({
        "name": "speaker_embedding",
        "value": round(value, 1),
        "baseline": round(SAMPLE_S / without_cpu, 1),
        "ratio": round(slowdown, 2),
        "target": f">={TARGET_X_REALTIME:.0f}x real time; clone DSP slowed <={MAX_CLONE_SLOWDOWN - 1:.0%}",
        "met": value >= TARGET_X_REALTIME and slowdown <= MAX_CLONE_SLOWDOWN,
        "unit": "x real time (CPU)",
        "speech_s": round(speech_s, 1),
        "analysis_cpu_s": round(analysis_cpu, 4),
        "resemblyzer_rate_x": round(speech_s / overlapping_cpu, 1),
        "clean_with_checks_x": round(SAMPLE_S / with_cpu, 1),
        "clean_with_checks_cpu_s": round(with_cpu, 4),
        "clean_without_checks_cpu_s": round(without_cpu, 4),
        "speech_check_cpu_s": round(speech_cpu, 4),
        "clean_without_any_check_cpu_s": round(bare_cpu, 4),
        "all_checks_ratio": round(with_cpu / bare_cpu, 2),
        "scores": score_table(),
    }))


if __name__ == "__main__":
    main()
