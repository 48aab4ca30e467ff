"""Helpers to derive test variants from the voice fixture and to inspect results."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
FIXTURE_SR = 32000  # the fixture's own rate: variants are written at it, like a re-export would


def wav_bytes(samples: np.ndarray, sr: int = FIXTURE_SR, subtype: str = "PCM_16") -> bytes:
    """Samples (clipped to full scale, as a recorder would) as a WAV file."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def ffmpeg_transcode(data: bytes, suffix: str, *args: str) -> bytes:
    """Re-encode with ffmpeg (through files: MP4 needs a seekable output)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out" + suffix)
        Path(src).write_bytes(data)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, *args, dst], check=True)
        return Path(dst).read_bytes()


def white_noise(n: int, rms_dbfs: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(n)
    return (noise * 10.0 ** (rms_dbfs / 20.0)).astype(np.float32)


def with_noise(samples: np.ndarray, snr_db: float, seed: int = 7) -> np.ndarray:
    """Add white noise at a global SNR (mean speech-file power over noise power)."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return samples + white_noise(len(samples), 10.0 * np.log10(power) - snr_db, seed)


def quietest_point(samples: np.ndarray, sr: int, start_s: float, end_s: float) -> int:
    """Sample index at the centre of the quietest 100 ms between start_s and end_s: a natural
    pause (plain RMS, independent of the VAD under test)."""
    hop = sr // 10
    seg = samples[int(start_s * sr): int(end_s * sr)]
    frames = seg[: len(seg) // hop * hop].reshape(-1, hop)
    quietest = int(np.argmin(np.mean(frames.astype(np.float64) ** 2, axis=1)))
    return int(start_s * sr) + quietest * hop + hop // 2


def longest_silence_s(samples: np.ndarray, sr: int, below_peak_db: float = 45.0) -> float:
    """Longest run of 10 ms frames more than `below_peak_db` under the loudest frame."""
    hop = sr // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop).astype(np.float64)
    level = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-20)
    quiet = np.concatenate(([0], (level < level.max() - below_peak_db).astype(np.int8), [0]))
    edges = np.diff(quiet)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(runs.max()) / 100.0 if runs.size else 0.0


#: speech-like bursts (start_s, end_s) in `scene`
BURSTS = [(1.0, 2.5), (4.0, 4.6), (7.0, 9.0)]


def voiced(seconds: float, level_dbfs: float, seed: int) -> np.ndarray:
    """A speech-like burst: 150 Hz buzz with harmonics, syllable-rate amplitude wobble."""
    t = np.arange(round(seconds * SR)) / SR
    buzz = sum(np.sin(2 * np.pi * 150 * k * t + seed) / k for k in range(1, 12))
    wobble = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    x = buzz * wobble
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def scene(floor_dbfs: float = -60.0, seconds: float = 10.0) -> np.ndarray:
    """White noise at `floor_dbfs` with a -20 dBFS speech-like burst at each of BURSTS."""
    x = white_noise(round(seconds * SR), floor_dbfs, seed=1)
    for i, (start, end) in enumerate(BURSTS):
        x[round(start * SR):round(end * SR)] += voiced(end - start, -20.0, seed=i)
    return x
