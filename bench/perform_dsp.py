"""Benchmark: rendering a voice note (shared.audio.mix.render_note) against plain ffmpeg.

Input: the first 30 s of the voice fixture cut into 3 sentence-sized chunks, each encoded as
44.1 kHz 128 kbit/s MP3 (what a TTS provider returns). Ours: decode the chunks, join, mix over
a brown-noise bed (1 s lead-in and tail, fades), BS.1770 loudness to -16 LUFS with a -1.5 dBTP
true-peak ceiling, MP3 encode. Baseline, the same job in one ffmpeg run (`-threads 1`):
concat + adelay/apad, anoisesrc brown noise with afade, amix, one-pass loudnorm, MP3 encode.

Pinned to one CPU (child processes inherit the affinity). Prints one JSON line.
Usage: python bench/perform_dsp.py [--quick]
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
from shared.audio.codec import decode_to_mono, encode_mp3
from shared.audio.mix import render_note

FIXTURE = REPO / "fixtures" / "voice" / "sample_en_49s.mp3"
SR = 44100
NOTE_S = 30.0
CHUNKS = 3
TARGET_X_REALTIME = 50.0
BACKGROUND_VOLUME = 0.5



def voice_chunks() -> list[bytes]:
    voice = decode_to_mono(FIXTURE.read_bytes(), SR)[: round(NOTE_S * SR)]
    return [encode_mp3(part, SR, 128) for part in _split(voice, CHUNKS)]


def _split(samples, parts):
    size = len(samples) // parts
    return [samples[i * size:(i + 1) * size] for i in range(parts)]


def ffmpeg_baseline(paths: list[str], out: str, note_s: float) -> None:
    total = note_s + 2.0
    concat = "".join(f"[{i}:a]" for i in range(len(paths)))
    graph = (
        f"{concat}concat=n={len(paths)}:v=0:a=1,adelay=1000,apad=pad_dur=1[v];"
        f"anoisesrc=color=brown:sample_rate={SR}:amplitude=0.02:duration={total:.3f},"
        f"afade=t=in:d=0.8,afade=t=out:st={total - 0.8:.3f}:d=0.8[bed];"
        "[v][bed]amix=inputs=2:duration=longest:normalize=0,loudnorm=I=-16:TP=-1.5:LRA=11"
    )
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-y"]
    for path in paths:
        cmd += ["-i", path]
    cmd += ["-filter_complex", graph, "-ar", str(SR), "-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", out]
    subprocess.run(cmd, capture_output=True, check=True)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 3 if args.quick else 9

    pin_to_one_cpu()
    chunks = voice_chunks()

    def ours():
        return render_note(chunks, add_background=True, background_volume=BACKGROUND_VOLUME, fan_loop_path=None)

    note = ours()  # warm-up: imports, filter design caches
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, chunk in enumerate(chunks):
            paths.append(os.path.join(tmp, f"chunk{i}.mp3"))
            Path(paths[-1]).write_bytes(chunk)
        out = os.path.join(tmp, "note.mp3")
        ffmpeg_baseline(paths, out, NOTE_S)  # warm-up
        # interleaved, so a change in the machine's load hits both sides alike
        (ours_wall, ours_s), (base_wall, baseline_s) = interleaved(
            [ours, lambda: ffmpeg_baseline(paths, out, NOTE_S)], runs)

    value, base_value = note.duration_s / ours_s, note.duration_s / baseline_s
    print(json.dumps({
        "name": "perform_dsp",
        "value": round(value, 1),
        "baseline": round(base_value, 1),
        "ratio": round(value / base_value, 2),
        "target": f">={TARGET_X_REALTIME:.0f}x real time",
        "met": value >= TARGET_X_REALTIME,
        "unit": "x real time (CPU)",
        "median_cpu_s": round(ours_s, 4),
        "baseline_median_cpu_s": round(baseline_s, 4),
        "median_wall_s": round(ours_wall, 4),
        "baseline_median_wall_s": round(base_wall, 4),
        "x_real_time_wall": round(note.duration_s / ours_wall, 1),
        "note_s": round(note.duration_s, 2),
        "loudness_lufs": round(note.loudness_lufs, 2),
        "true_peak_dbtp": round(note.true_peak_dbtp, 2),
    }))


if __name__ == "__main__":
    main()
