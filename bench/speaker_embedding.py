"""Benchmark: speaker embedding speed, and what the speaker checks add to clone-sample cleaning.

Input: the voice fixture looped to 60 s as MP3 (as bench/clone_dsp.py). Measured, pinned to one
core with one BLAS thread, in CPU seconds, the sides taking turns within each round:

* value: the speaker analysis of the sample's speech (shared.audio.speaker.checks: resample to
  16 kHz, mel frames, LSTM over edge-to-edge 1.6 s windows), as x real time of speech;
* resemblyzer_rate_x: the same audio embedded with resemblyzer's overlapping windows (1.3 per
  second), the rate `embed_utterance` uses by default;
* baseline: clean_sample without the speaker analysis (the analysis swapped for its result,
  computed beforehand), x real time of the upload; `ratio` is clean_sample with the analysis
  over without it, so 1.20 would be the 20 % the issue allows.

Prints one JSON line. Usage: python bench/speaker_embedding.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from bench.clone_dsp import SAMPLE_S, interleaved, looped_sample  # noqa: E402
from shared.audio import clean  # noqa: E402
from shared.audio.codec import decode_to_mono  # noqa: E402
from shared.audio.speaker.checks import analyse_speech, speech_only  # noqa: E402
from shared.audio.speaker.encoder import embed_utterance, encoder_input  # noqa: E402
from shared.audio.vad import detect_speech  # noqa: E402

TARGET_X_REALTIME = 50.0
MAX_CLONE_SLOWDOWN = 1.20


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
    real_analysis = clean.analyse_speech

    def clean_without_analysis():
        clean.analyse_speech = lambda _speech, _sr: known
        try:
            clean.clean_sample(data, rules)
        finally:
            clean.analyse_speech = real_analysis

    clean.clean_sample(data, rules)
    (_, analysis_cpu), (_, overlapping_cpu), (_, with_cpu), (_, without_cpu) = interleaved([
        lambda: analyse_speech(speech, rules.sample_rate),
        lambda: embed_utterance(wav16k),
        lambda: clean.clean_sample(data, rules),
        clean_without_analysis,
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
    }))


if __name__ == "__main__":
    main()
