"""Variants of the real voice fixture, derived with ffmpeg (never committed)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from tests.conftest import REPO, SAMPLE, SECOND_SPEAKER

#: real music, not speech (fixtures/sounds/SOURCES.md)
MUSIC = REPO / "fixtures" / "sounds" / "house_lo.ogg"


def _ffmpeg(args: list[str], out_ext: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{out_ext}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, str(out)], check=True, timeout=120)
        return out.read_bytes()


def original() -> bytes:
    return SAMPLE.read_bytes()


@lru_cache(maxsize=None)
def reencoded(fmt: str) -> bytes:
    """The fixture in another container: wav, ogg (opus), webm (opus), flac, m4a (aac)."""
    codec = {"wav": ["-c:a", "pcm_s16le"], "ogg": ["-c:a", "libopus", "-b:a", "48k"],
             "webm": ["-c:a", "libopus", "-b:a", "48k"], "flac": ["-c:a", "flac"],
             "m4a": ["-c:a", "aac", "-b:a", "96k"], "mp3": ["-c:a", "libmp3lame", "-b:a", "96k"]}[fmt]
    return _ffmpeg(["-i", str(SAMPLE), *codec], fmt)


@lru_cache(maxsize=None)
def cut(seconds: float) -> bytes:
    return _ffmpeg(["-i", str(SAMPLE), "-t", str(seconds), "-c:a", "libmp3lame", "-b:a", "96k"], "mp3")


@lru_cache(maxsize=None)
def padded_with_silence(seconds: float) -> bytes:
    ms = int(seconds * 1000)
    return _ffmpeg(["-i", str(SAMPLE), "-af", f"adelay={ms},apad=pad_dur={seconds}", "-c:a", "pcm_s16le"], "wav")


@lru_cache(maxsize=None)
def clipped(gain_db: float = 20) -> bytes:
    # 16-bit PCM output hard-clips everything the gain pushed past full scale
    return _ffmpeg(["-i", str(SAMPLE), "-af", f"volume={gain_db}dB", "-c:a", "pcm_s16le"], "wav")


@lru_cache(maxsize=None)
def with_noise(amplitude: float) -> bytes:
    return _ffmpeg(["-i", str(SAMPLE), "-f", "lavfi", "-i", f"anoisesrc=color=white:amplitude={amplitude}:seed=7",
                    "-filter_complex", "[0:a][1:a]amix=inputs=2:duration=first:normalize=0", "-c:a", "pcm_s16le"],
                   "wav")


@lru_cache(maxsize=None)
def near_silent() -> bytes:
    return _ffmpeg(["-i", str(SAMPLE), "-af", "volume=-70dB", "-c:a", "pcm_s16le"], "wav")


@lru_cache(maxsize=None)
def two_speakers(first_s: float = 25.0) -> bytes:
    """Two real people in one upload: the fixture's first `first_s` seconds, then the whole
    second-speaker fixture (24.8 s of another reader, fixtures/voice/SOURCES.md), as one MP3."""
    return _ffmpeg(["-i", str(SAMPLE), "-i", str(SECOND_SPEAKER), "-filter_complex",
                    f"[0:a]atrim=0:{first_s},aresample=32000[a];[1:a]aresample=32000[b];[a][b]concat=n=2:v=0:a=1",
                    "-ac", "1", "-c:a", "libmp3lame", "-b:a", "96k"], "mp3")


@lru_cache(maxsize=None)
def music(seconds: float = 35.0) -> bytes:
    """A recording of music and no voice: the music fixture looped to `seconds`, as an MP3."""
    return _ffmpeg(["-stream_loop", "-1", "-i", str(MUSIC), "-t", f"{seconds}", "-ar", "44100", "-ac", "1",
                    "-c:a", "libmp3lame", "-b:a", "128k"], "mp3")


def truncated(fraction: float = 0.1) -> bytes:
    data = original()
    return data[: int(len(data) * fraction)]


def random_bytes(n: int = 200_000) -> bytes:
    import random

    return random.Random(1).randbytes(n)


def text_file() -> bytes:
    return ("This is a text file pretending to be audio.\n" * 200).encode()
