"""Benchmark: clone-sample cleaning (shared.audio.clean.clean_sample) against plain ffmpeg.

Input: the voice fixture looped to 60 s and encoded as MP3 (what a phone upload looks like).
Ours: probe + decode + VAD trim/pause shortening + BS.1770 loudness + true-peak limiting +
quality checks + MP3 encode. Baseline, the same job in ffmpeg: decode + silenceremove +
two-pass loudnorm (pass 1 measures, print_format=json; pass 2 applies the measured values)
+ MP3 encode, `-threads 1`.

Both run pinned to one CPU (child processes inherit the affinity). Prints one JSON line.
Usage: python bench/clone_dsp.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# first: bench.cpu_time pins this process to one core and one BLAS thread before numpy loads
from bench.cpu_time import interleaved, pin_to_one_cpu
from shared.audio.clean import SampleRules, clean_sample

FIXTURE = REPO / "fixtures" / "voice" / "sample_en_49s.mp3"
SAMPLE_S = 60.0
TARGET_X_REALTIME = 60.0
TARGET_VS_FFMPEG = 2.0
SILENCE = ("silenceremove=start_periods=1:start_threshold=-50dB:"
           "stop_periods=-1:stop_duration=1:stop_threshold=-50dB")



def looped_sample(seconds: float) -> bytes:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-stream_loop", "-1", "-i", str(FIXTURE), "-t", f"{seconds}",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3", "pipe:1"],
        capture_output=True, check=True,
    )
    return proc.stdout


def ffmpeg_baseline(path: str, out: str, rules: SampleRules) -> None:
    target = f"I={rules.target_lufs}:TP={rules.true_peak_dbtp}:LRA=11"
    first = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-threads", "1", "-i", path,
         "-af", f"{SILENCE},loudnorm={target}:print_format=json", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )
    stats = json.loads(first.stderr[first.stderr.rindex("{"):first.stderr.rindex("}") + 1])
    measured = (f"measured_I={stats['input_i']}:measured_TP={stats['input_tp']}:"
                f"measured_LRA={stats['input_lra']}:measured_thresh={stats['input_thresh']}:"
                f"offset={stats['target_offset']}:linear=true")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-y", "-i", path,
         "-af", f"{SILENCE},loudnorm={target}:{measured}", "-ar", str(rules.sample_rate), "-ac", "1",
         "-c:a", "libmp3lame", "-b:a", f"{rules.mp3_bitrate_kbps}k", out],
        capture_output=True, check=True,
    )



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 3 if args.quick else 9

    pin_to_one_cpu()
    rules = SampleRules()
    data = looped_sample(SAMPLE_S)
    clean_sample(data, rules)  # warm-up: imports, filter design caches

    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.mp3"), os.path.join(tmp, "out.mp3")
        Path(src).write_bytes(data)
        ffmpeg_baseline(src, out, rules)  # warm-up: page cache, dynamic linking
        # interleaved, so a change in the machine's load hits both sides alike
        (ours_wall, ours), (base_wall, baseline) = interleaved(
            [lambda: clean_sample(data, rules), lambda: ffmpeg_baseline(src, out, rules)], runs)

    value, base_value = SAMPLE_S / ours, SAMPLE_S / baseline
    print(json.dumps({
        "name": "clone_dsp",
        "value": round(value, 1),
        "baseline": round(base_value, 1),
        "ratio": round(value / base_value, 2),
        "target": f">={TARGET_X_REALTIME:.0f}x real time and >={TARGET_VS_FFMPEG:.0f}x ffmpeg",
        "met": value >= TARGET_X_REALTIME and value / base_value >= TARGET_VS_FFMPEG,
        "unit": "x real time (CPU)",
        "median_cpu_s": round(ours, 4),
        "baseline_median_cpu_s": round(baseline, 4),
        "median_wall_s": round(ours_wall, 4),
        "baseline_median_wall_s": round(base_wall, 4),
        "x_real_time_wall": round(SAMPLE_S / ours_wall, 1),
    }))


if __name__ == "__main__":
    main()
