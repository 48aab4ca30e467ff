"""Sample-accurate editing without clicks: fades, equal-power splices, pause shortening.

A cut in a waveform is a step; a step is a click. Every edit here ramps instead:

* fades use a raised-sine (half-Hann) shape, smooth at both ends;
* splices overlap the two sides with an equal-power crossfade (sin/cos, gains whose squares
  sum to 1), right for joining material that is not phase-aligned - room tone to room tone,
  one sentence to the next - where an equal-gain fade would dip by 3 dB in the middle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fade_in_curve(n: int) -> np.ndarray:
    """Raised-sine ramp 0 -> 1 over n samples (excludes the endpoints, so n=1 is 0.5)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def apply_fades(samples: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """A copy of `samples` with a raised-sine fade-in and fade-out of the given lengths."""
    out = np.array(samples, dtype=np.float32, copy=True)
    fade_in, fade_out = min(fade_in, len(out)), min(fade_out, len(out))
    if fade_in:
        out[:fade_in] *= fade_in_curve(fade_in)
    if fade_out:
        out[len(out) - fade_out:] *= fade_in_curve(fade_out)[::-1]
    return out


def _equal_power(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(n) + 0.5) / n
    return np.cos(0.5 * np.pi * t).astype(np.float32), np.sin(0.5 * np.pi * t).astype(np.float32)


def splice(pieces: Sequence[np.ndarray], overlap: int) -> np.ndarray:
    """Concatenate `pieces`, each junction an equal-power crossfade of up to `overlap` samples
    (shortened where a piece is too short to give that much). Output is float32."""
    pieces = [np.asarray(p, dtype=np.float32) for p in pieces if len(p)]
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    overlaps = [min(overlap, len(a) // 2, len(b) // 2) for a, b in zip(pieces, pieces[1:], strict=False)]
    total = sum(len(p) for p in pieces) - sum(overlaps)
    out = np.zeros(total, dtype=np.float32)
    pos = 0
    for i, piece in enumerate(pieces):
        if i:
            k = overlaps[i - 1]
            pos -= k
            if k:
                fade_out, fade_in = _equal_power(k)
                out[pos:pos + k] *= fade_out
                out[pos:pos + k] += piece[:k] * fade_in
                piece = piece[k:]
                pos += k
        out[pos:pos + len(piece)] = piece
        pos += len(piece)
    return out


def keep_spans(regions: np.ndarray, n_samples: int, sample_rate: int, *, max_pause_s: float,
               lead_s: float, tail_s: float, overlap: int = 0) -> list[tuple[int, int]]:
    """The [start, end) stretches of a recording to keep so that:

    * it starts `lead_s` before the first speech region and ends `tail_s` after the last;
    * every pause between regions longer than `max_pause_s` keeps only its first and last
      `max_pause_s / 2` (the speaker's breath out and breath in), to be spliced together
      with a crossfade of `overlap` samples, so the pause comes out `max_pause_s` long;
    * shorter pauses are untouched: they are the rhythm of the voice being cloned.
    """
    if len(regions) == 0:
        return []
    half = round((max_pause_s * sample_rate + overlap) / 2)
    start = max(0, int(regions[0, 0]) - round(lead_s * sample_rate))
    end = min(n_samples, int(regions[-1, 1]) + round(tail_s * sample_rate))
    gaps_start, gaps_end = regions[:-1, 1], regions[1:, 0]
    long_gap = (gaps_end - gaps_start) > 2 * half
    spans, cursor = [], start
    for gap_start, gap_end in zip(gaps_start[long_gap], gaps_end[long_gap], strict=True):
        spans.append((cursor, int(gap_start) + half))
        cursor = int(gap_end) - half
    spans.append((cursor, end))
    return spans
