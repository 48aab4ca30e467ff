"""Perform side: assemble a voice note from synthesized sentence chunks over a soft "fan" bed.

    chunks (MP3) -> decode -> join_chunks -> mix_with_fan -> loudness/true-peak -> MP3

Levels. The bed is set relative to the *voice's* integrated loudness, not in absolute terms,
so the user's "background volume" means the same whatever the voice provider delivers; the
final mix is then normalised as a whole (BS.1770, true-peak limited) to the delivery target.
`background_volume` 0..1 maps linearly in dB onto BED_MIN_DB..BED_MAX_DB below the voice:
equal slider steps sound like equal steps. At 0 the bed is a barely-there 40 dB under the
voice (switching it off is `add_background=False`); at 1 it sits 12 dB under, clearly audible
yet never competing with speech intelligibility.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from shared.audio.bed import noise_bed
from shared.audio.bed import warm as warm_bed
from shared.audio.codec import AudioDecodeError, decode_many_to_mono, decode_to_mono, encode_mp3, lame_gain
from shared.audio.edit import apply_fades, splice
from shared.audio.loudness import integrated_loudness
from shared.audio.normalize import normalize_loudness
from shared.audio.vad import audible_span

BED_MIN_DB = -40.0
BED_MAX_DB = -12.0
#: fades on the voice itself when it stands alone or enters over the bed
VOICE_FADE_MS = 10.0
#: silence between sentences, on top of the 30 ms margins `audible_span` keeps on each side
SENTENCE_PAUSE_MS = 250.0
#: crossfade where a fan recording loops back to its start (steady noise hides a long one)
LOOP_CROSSFADE_S = 0.5
#: bound per decoded chunk / fan loop: a sentence is seconds, a loop a minute or two
MAX_CHUNK_S = 120.0
MAX_FAN_LOOP_S = 600.0
#: LAME's algorithm setting for notes (codec.MP3_QUALITY, 3, stays for the clone sample). 7 skips
#: LAME's noise-shaping loop, half the encode's CPU (77 vs 154 ms for a 32 s note). At 128 kbit/s
#: for one channel the bits are ample either way: on a 32 s note over the bed, 7 codes the
#: speech with as little error as 3 in every band up to 13.5 kHz (~42 dB SNR, PESQ-WB 4.63
#: for both), and above that 6 dB more error at 73-82 dB under the note's level
#: (bench/README.md, "Worker CPU per perform job").
NOTE_MP3_QUALITY = 7


def bed_level_db(background_volume: float) -> float:
    """Bed loudness relative to the voice, in dB, for a 0..1 user setting."""
    if not 0.0 <= background_volume <= 1.0:  # also rejects NaN
        raise ValueError(f"background_volume must be between 0 and 1, got {background_volume!r}")
    return BED_MIN_DB + (BED_MAX_DB - BED_MIN_DB) * background_volume


def join_chunks(chunks: list[np.ndarray], sr: int, crossfade_ms: float = 10.0, *,
                pause_ms: float = SENTENCE_PAUSE_MS) -> np.ndarray:
    """Join synthesized sentence chunks into one voice track without clicks.

    Each chunk is trimmed lightly to its audible part, keeping 30 ms around it so soft onsets
    and decays survive (TTS padding varies from none to ~1 s and would make the rhythm uneven).
    Chunks are then separated by `pause_ms` of silence, a sentence break, each faded in and out
    over `crossfade_ms`; with `pause_ms=0` they overlap instead by an equal-power crossfade of
    `crossfade_ms`. The ends of the track get the same short fades. Silent chunks are dropped."""
    fade = max(1, round(crossfade_ms * 1e-3 * sr))
    pieces = []
    for chunk in chunks:
        start, end = audible_span(chunk, sr)
        if end > start:
            pieces.append(chunk[start:end])
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    if pause_ms <= 0:
        return apply_fades(splice(pieces, fade), fade, fade)
    gap = np.zeros(round(pause_ms * 1e-3 * sr), dtype=np.float32)
    faded = [apply_fades(piece, fade, fade) for piece in pieces]
    return np.concatenate([part for piece in faded for part in (gap, piece)][1:])


def loop_to_length(loop: np.ndarray, n: int, sr: int, crossfade_s: float = LOOP_CROSSFADE_S) -> np.ndarray:
    """Repeat `loop` to exactly n samples, each wrap an equal-power crossfade (shortened for
    short loops), so the seam is not heard as a jump in the noise."""
    loop = np.asarray(loop, dtype=np.float32)
    if len(loop) == 0:
        raise ValueError("the fan loop is empty")
    if len(loop) >= n:
        return loop[:n].copy()
    overlap = min(round(crossfade_s * sr), len(loop) // 4)
    repeats = 1 + math.ceil((n - len(loop)) / max(1, len(loop) - overlap))
    return splice([loop] * repeats, overlap)[:n]


def mix_with_fan(voice: np.ndarray, sr: int, *, add_background: bool, background_volume: float,
                 fan_loop: np.ndarray | None = None, lead_in_s: float = 1.0, tail_s: float = 1.0,
                 fade_s: float = 0.8, seed: int = 0) -> np.ndarray:
    """Place the voice over the bed: `lead_in_s` of bed alone, the voice, `tail_s` of bed.

    The bed fades in and out over `fade_s` and sits bed_level_db(background_volume) under the
    voice's integrated loudness. It is `fan_loop` (looped as needed) or, without one, a
    stretch of brown noise that `seed` picks. With add_background=False the result is the
    voice alone with short fades, no lead-in or tail: silence before a voice note only feels
    like lag."""
    voice_fade = round(VOICE_FADE_MS * 1e-3 * sr)
    voice = apply_fades(voice, voice_fade, voice_fade)
    if not add_background:
        return voice
    relative_db = bed_level_db(background_volume)
    lead, tail = round(lead_in_s * sr), round(tail_s * sr)
    n = lead + len(voice) + tail
    if fan_loop is not None:
        bed = loop_to_length(fan_loop, n, sr)
        bed_lufs = integrated_loudness(bed, sr)
    else:  # a stretch of the process's long bed, its loudness known (shared/audio/bed.py)
        bed, bed_lufs = noise_bed(n, sr, seed)

    voice_lufs = integrated_loudness(voice, sr)
    out = np.zeros(n, dtype=np.float32)
    if bed_lufs is not None:
        # a voice too short or quiet to measure gets the bed at the EBU R128 reference level
        reference = voice_lufs if voice_lufs is not None else -23.0
        gain = 10.0 ** ((reference + relative_db - bed_lufs) / 20.0)
        fade = min(round(fade_s * sr), n // 2)
        out += apply_fades(bed, fade, fade) * np.float32(gain)
    out[lead:lead + len(voice)] += voice
    return out


@dataclass(frozen=True)
class RenderedNote:
    mp3: bytes
    duration_s: float
    loudness_lufs: float
    true_peak_dbtp: float
    sample_rate: int
    #: the joined voice chunks before the fan bed and normalisation, at `sample_rate`: what a
    #: voice match score should hear (the fan is not the voice)
    voice: np.ndarray


@lru_cache(maxsize=4)
def _cached_fan_loop(path: str, mtime_ns: int, size: int, sr: int) -> np.ndarray:
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        loop = decode_to_mono(data, sr, max_seconds=MAX_FAN_LOOP_S)
    except AudioDecodeError as exc:
        # Not a ValueError: a broken FAN_LOOP_PATH is our configuration, not the provider's audio.
        raise RuntimeError(f"the fan loop {path} cannot be decoded: {exc}") from exc
    loop.setflags(write=False)  # shared between notes
    return loop


def load_fan_loop(path: str, sr: int) -> np.ndarray:
    """Decode a fan recording once per (file version, rate); workers render many notes with
    the same loop, and a decode is a process start plus the decode itself."""
    st = os.stat(path)
    return _cached_fan_loop(os.path.abspath(path), st.st_mtime_ns, st.st_size, sr)


def warm(sample_rate: int = 44100, bitrate_kbps: int = 128) -> None:
    """Make what every note at this setting reuses (the long noise bed, LAME's gain), e.g. in a
    worker's parent before its pool forks; the defaults are render_note's."""
    warm_bed(sample_rate)
    lame_gain(sample_rate, bitrate_kbps, NOTE_MP3_QUALITY)


def render_note(voice_chunks_mp3: list[bytes], *, add_background: bool, background_volume: float,
                fan_loop_path: str | None, target_lufs: float = -16.0, true_peak_dbtp: float = -1.5,
                sample_rate: int = 44100, bitrate_kbps: int = 128, seed: int = 0) -> RenderedNote:
    """Decode, join, mix, normalise and encode a voice note (MP3, mono, `sample_rate`).
    `seed` picks the stretch of brown-noise bed (the same seed, the same note).

    Raises ValueError when there is nothing usable to render (no chunks, only silence), and
    its AudioDecodeError for chunks that are not audio: a provider fault, not something to
    ship to a listener."""
    if not voice_chunks_mp3:
        raise ValueError("no voice chunks to render")
    bed_level_db(background_volume)  # validate before any work
    chunks = decode_many_to_mono(voice_chunks_mp3, sample_rate, max_seconds=MAX_CHUNK_S)
    voice = join_chunks(chunks, sample_rate)
    if len(voice) == 0:
        raise ValueError("the voice chunks are silent")
    fan_loop = load_fan_loop(fan_loop_path, sample_rate) if add_background and fan_loop_path else None
    mixed = mix_with_fan(voice, sample_rate, add_background=add_background,
                         background_volume=background_volume, fan_loop=fan_loop, seed=seed)
    final = normalize_loudness(mixed, sample_rate, target_lufs, true_peak_dbtp)
    if final.loudness_after_lufs is None:
        raise ValueError("the voice chunks are too quiet to measure")
    return RenderedNote(
        mp3=encode_mp3(final.samples, sample_rate, bitrate_kbps, quality=NOTE_MP3_QUALITY),
        duration_s=len(final.samples) / sample_rate,
        loudness_lufs=final.loudness_after_lufs,
        true_peak_dbtp=final.true_peak_dbtp,
        sample_rate=sample_rate,
        voice=voice,
    )
