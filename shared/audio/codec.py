"""Audio in and out: probe and decode any common container by content, encode MP3.

Decoding goes through ffmpeg (a subprocess reading a temporary file: MP4/M4A keep their index
at the end, so a pipe is not enough). Encoding MP3 is in-process with LAME (lameenc), which
avoids a process start per note.

Untrusted input: a few kilobytes of FLAC or Opus can declare hours of digital silence, so
`decode_to_mono` takes a bound and ffmpeg stops producing (and reading) at that length; a
wall-clock timeout backs it up against inputs that are slow to demux.

Bytes that are not audio we can read raise AudioDecodeError, which says nothing about whose
bytes they were: the clone path makes it the user's SampleUnsupported (shared/audio/clean.py),
and for a provider's audio it is the provider's fault.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soundfile

#: containers we accept, as ffprobe names them (format_name is a comma list)
ACCEPTED_FORMATS = frozenset({
    "mp3", "wav", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "aac", "ogg", "matroska", "webm", "flac",
})
DECODE_TIMEOUT_S = 60
PIPE_BYTES = 1 << 20
#: LAME algorithm quality, 0 (best, slowest) .. 9. 3 is LAME's own default, which ffmpeg's
#: libmp3lame uses too. At 128 kbit/s for one channel the bit budget is generous: on the voice
#: fixture 3 and 2 both code speech at > 40 dB SNR, and 2 takes twice as long (0.43 vs 0.23 s
#: for a minute of audio), the largest single cost of cleaning a sample.
MP3_QUALITY = 3


class AudioDecodeError(ValueError):
    """The bytes are not audio we can read: empty, no audio stream, a container we do not
    accept, damaged, or too slow to read. The message says which, in words fit for a user.

    A ValueError, as UnicodeDecodeError is: the argument has the right type, not a usable value."""


@dataclass(frozen=True)
class AudioInfo:
    format_name: str
    codec_name: str
    duration_s: float | None
    sample_rate: int | None
    channels: int | None


def _with_tempfile(data: bytes, fn):
    fd, path = tempfile.mkstemp(prefix="nv-audio-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return fn(path)
    finally:
        os.unlink(path)


def probe(data: bytes) -> AudioInfo:
    """Identify the container and first audio stream from the bytes alone.

    Raises AudioDecodeError when the bytes are not audio we accept, whatever their name says."""
    if not data:
        raise AudioDecodeError("The file is empty.")

    def run(path: str) -> AudioInfo:
        try:
            proc = subprocess.run(
                ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                 "-select_streams", "a:0", path],
                capture_output=True, timeout=DECODE_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise AudioDecodeError("The file took too long to read; it may be damaged.") from None
        if proc.returncode != 0:
            raise AudioDecodeError("The file is not an audio recording we can read.")
        meta = json.loads(proc.stdout or b"{}")
        streams = meta.get("streams") or []
        fmt = meta.get("format") or {}
        if not streams:
            raise AudioDecodeError("The file holds no audio stream.")
        names = set((fmt.get("format_name") or "").split(","))
        if not names & ACCEPTED_FORMATS:
            raise AudioDecodeError(f"Unsupported audio container '{fmt.get('format_name')}'.")
        stream = streams[0]
        duration = stream.get("duration") or fmt.get("duration")
        return AudioInfo(
            format_name=fmt.get("format_name", ""),
            codec_name=stream.get("codec_name", ""),
            duration_s=float(duration) if duration not in (None, "N/A") else None,
            sample_rate=int(stream["sample_rate"]) if stream.get("sample_rate") else None,
            channels=stream.get("channels"),
        )

    return _with_tempfile(data, run)


def _run_large_output(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a command whose stdout is megabytes of PCM. A 1 MiB pipe (the Linux default cap for
    unprivileged processes) instead of 64 KiB cuts the context switches between ffmpeg and us
    by 16x, worth ~15 % of a decode when both share one core."""
    try:
        return subprocess.run(cmd, capture_output=True, timeout=DECODE_TIMEOUT_S, pipesize=PIPE_BYTES)
    except OSError as exc:  # pipe size refused (lowered fs.pipe-max-size): use the default
        if exc.errno not in (errno.EPERM, errno.EINVAL, errno.EBUSY):
            raise
        return subprocess.run(cmd, capture_output=True, timeout=DECODE_TIMEOUT_S)


def _pcm_output(input_index: int, sample_rate: int, max_seconds: float | None, target: str) -> list[str]:
    """ffmpeg output options: first audio stream of input `input_index` as mono float32 PCM."""
    args = ["-map", f"{input_index}:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sample_rate)]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds + 2.0 / sample_rate:.6f}"]
    return args + ["-f", "f32le", "-acodec", "pcm_f32le", target]


def _pcm_samples(raw: bytes) -> np.ndarray:
    usable = len(raw) // 4 * 4
    if usable == 0:
        raise AudioDecodeError("The audio could not be decoded; the file may be damaged or truncated.")
    return _in_range(np.frombuffer(raw[:usable], dtype="<f4").astype(np.float32, copy=True))


def _in_range(samples: np.ndarray) -> np.ndarray:
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples


def decode_to_mono(data: bytes, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode the first audio stream to float32 mono PCM in [-1, 1] at `sample_rate`.

    `max_seconds` bounds the decoded length (a tiny file can declare hours of silence: a
    decompression bomb); the caller sees a result one sample longer than the bound when the
    input was longer, so it can tell "too long" from "exactly the limit".

    A damaged or cut-off file yields whatever decoded before the damage (ffmpeg may still exit
    non-zero); only a file that yields nothing raises AudioDecodeError. Callers compare the
    length with `probe(...).duration_s` to tell a truncated upload from a short one."""

    def run(path: str) -> np.ndarray:
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path] + _pcm_output(0, sample_rate, max_seconds, "pipe:1")
        try:
            proc = _run_large_output(cmd)
        except subprocess.TimeoutExpired:
            raise AudioDecodeError("The audio took too long to decode; the file may be damaged.") from None
        return _pcm_samples(proc.stdout)

    return _with_tempfile(data, run)


def _ffmpeg_decode_many(items: list[bytes], sample_rate: int, max_seconds: float | None) -> list[np.ndarray]:
    """`decode_to_mono` for several files in one ffmpeg run: starting ffmpeg costs ~50 ms (it
    links against ~150 shared libraries), more than decoding a sentence."""
    with tempfile.TemporaryDirectory(prefix="nv-audio-") as tmp:
        cmd = ["ffmpeg", "-nostdin", "-v", "error"]
        outputs = []
        for i, data in enumerate(items):
            source = os.path.join(tmp, f"in{i}")
            with open(source, "wb") as fh:
                fh.write(data)
            cmd += ["-i", source]
        for i in range(len(items)):
            outputs.append(os.path.join(tmp, f"out{i}.f32"))
            cmd += _pcm_output(i, sample_rate, max_seconds, outputs[-1])
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=DECODE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AudioDecodeError("The audio took too long to decode; a file may be damaged.") from None
        if proc.returncode != 0 and not all(os.path.exists(path) for path in outputs):
            raise AudioDecodeError("The audio could not be decoded; a file may be damaged or truncated.")
        decoded = []
        for path in outputs:
            with open(path, "rb") as fh:
                decoded.append(_pcm_samples(fh.read()))
        return decoded


def _mono_mp3_in_process(data: bytes, sample_rate: int, max_seconds: float | None) -> np.ndarray | None:
    """A mono MP3 already at `sample_rate`, decoded by libsndfile (mpg123) in this process, or
    None for anything else. Same samples as ffmpeg's decoder (within 2e-6, the same length:
    both drop the encoder delay a LAME header declares), same bound, same range."""
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            if f.format != "MP3" or f.channels != 1 or f.samplerate != sample_rate:
                return None
            # as many as ffmpeg's `-t` lets through (`_pcm_output`: the bound and two samples)
            frames = -1 if max_seconds is None else round(max_seconds * sample_rate) + 2
            samples = f.read(frames=frames, dtype="float32")
    except (soundfile.SoundFileError, RuntimeError, ValueError):  # not something libsndfile reads
        return None
    return _in_range(samples) if len(samples) else None


def decode_many_to_mono(items: list[bytes], sample_rate: int, max_seconds: float | None = None) -> list[np.ndarray]:
    """`decode_to_mono` for several files: a note's sentence chunks from the voice provider.

    What TTS providers send, a mono MP3 at the note's rate, is decoded in process (~6 ms of
    CPU for 10 s, where starting ffmpeg alone costs ~50 ms); the rest goes through one ffmpeg
    run for all of them (resampling, downmixing and every other container stay ffmpeg's).
    Provider audio only: user uploads keep ffmpeg in its own process (`decode_to_mono`).
    Raises AudioDecodeError if any item cannot be decoded."""
    decoded = [_mono_mp3_in_process(data, sample_rate, max_seconds) for data in items]
    rest = [i for i, samples in enumerate(decoded) if samples is None]
    if rest:
        for i, samples in zip(rest, _ffmpeg_decode_many([items[i] for i in rest], sample_rate, max_seconds),
                               strict=True):
            decoded[i] = samples
    return decoded


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float PCM in [-1, 1] to little-endian int16, rounded to nearest (truncation toward zero
    would add crossover distortion around every zero crossing)."""
    pcm = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)
    return np.rint(pcm).astype("<i2")


def _lame_encode(samples: np.ndarray, sample_rate: int, bitrate_kbps: int, quality: int) -> bytes:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    return bytes(encoder.encode(to_pcm16(samples).tobytes()) + encoder.flush())


@lru_cache(maxsize=16)
def lame_gain(sample_rate: int, bitrate_kbps: int, quality: int = MP3_QUALITY) -> float:
    """The linear gain LAME applies to the passband at this configuration, by round trip.

    LAME is not level-transparent: at CBR rates where its lowpass is active it scales the
    whole passband by a constant (0.950, -0.45 dB, at 128 kbit/s mono; -0.27 dB at 192; none
    from 256 up), flat from 100 Hz to 15 kHz and independent of level. Left alone, every note
    we normalise would reach listeners ~0.45 LU under target. Measured once per configuration
    and process on a steady three-tone signal (RMS over the middle, so encoder delay does not
    matter), rather than hard-coded, so an encoder upgrade cannot silently change it."""
    t = np.arange(sample_rate, dtype=np.float64) / sample_rate
    tones = (0.1 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 3000 * t)))
    tones = tones.astype(np.float32)
    decoded = decode_to_mono(_lame_encode(tones, sample_rate, bitrate_kbps, quality), sample_rate)
    middle = slice(sample_rate // 4, 3 * sample_rate // 4)
    rms_in = float(np.sqrt(np.mean(tones[middle].astype(np.float64) ** 2)))
    rms_out = float(np.sqrt(np.mean(decoded[middle].astype(np.float64) ** 2)))
    return rms_out / rms_in


def encode_mp3(samples: np.ndarray, sample_rate: int, bitrate_kbps: int = 128, *,
               quality: int = MP3_QUALITY) -> bytes:
    """Encode float mono PCM to a constant-bitrate MP3 in process (LAME, no resampling).

    Level-transparent: LAME's own passband gain (see `lame_gain`) is compensated, so the MP3
    decodes at the loudness of `samples`. The compensation (a fraction of a dB) is trimmed
    where it would push a sample past full scale: a clip is worse than 0.4 dB of level."""
    pcm = np.asarray(samples, dtype=np.float32)
    boost = 1.0 / lame_gain(sample_rate, bitrate_kbps, quality)
    peak = float(np.max(np.abs(pcm))) if len(pcm) else 0.0
    if peak * boost > 1.0:
        boost = max(1.0, 1.0 / peak)
    return _lame_encode(pcm * np.float32(boost), sample_rate, bitrate_kbps, quality)
