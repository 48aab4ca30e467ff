"""Is a voice sample one person? Speaker embeddings of windows over its speech, compared.

A sample is the speech of one person when the embeddings of its 1.6 s windows all point the
same way. Two people (a conversation, a second voice in the room, two recordings joined) make
the windows fall into two groups whose centres are as far apart as two different speakers are.

The windows are split in two by spherical 2-means, seeded with the two least alike windows, so
the split is deterministic. One speaker still splits (every voice varies between sentences), but
into groups whose centres stay close; the decision rests on how close, and on the smaller group
being large enough to be a person rather than a cough, a laugh or a stumble. Thresholds and the
recordings they were calibrated on: docs/VOICE_MATCH.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio.speaker.encoder import (
    EncoderAudio,
    Embedding,
    cosine,
    embed_frames,
    embedding_of,
    partial_starts,
)

#: centres of the two groups of windows less alike than this: two speakers (see docs/VOICE_MATCH.md)
MAX_SPLIT_COSINE = 0.80
#: ... provided the smaller group holds this share of the windows ...
MIN_MINORITY_SHARE = 0.08
#: ... and at least this many windows (about 5 s of speech at 1.6 s per window)
MIN_MINORITY_WINDOWS = 3
#: windows per second of speech: one every 1.6 s, edge to edge. Overlapping windows (resemblyzer
#: uses 1.3 per second) would cost twice as much and tell no more about who is speaking.
WINDOWS_PER_S = 0.625
KMEANS_ROUNDS = 20
#: the LSTM's cost is its windows. A first pass embeds every 2nd or 3rd window (never fewer
#: than about 10): any stretch of MIN_MINORITY_WINDOWS windows keeps at least one ...
MAX_STRIDE = MIN_MINORITY_WINDOWS
FIRST_PASS_MIN_WINDOWS = 10
#: ... and the rest follow only when that pass's split comes within this of MAX_SPLIT_COSINE,
#: so every refusal is decided on all the windows (docs/VOICE_MATCH.md, "Speed")
RECHECK_MARGIN = 0.05


@dataclass(frozen=True)
class SpeakerAnalysis:
    embedding: Embedding
    #: 0..1, mean cosine of each window to the sample's embedding: how alike the windows are
    consistency: float
    #: cosine between the centres of the two groups the windows split into (1.0: no split)
    split_cosine: float
    #: share of windows in the smaller group
    minority_share: float
    minority_windows: int

    @property
    def several_speakers(self) -> bool:
        return (self.split_cosine < MAX_SPLIT_COSINE and self.minority_share >= MIN_MINORITY_SHARE
                and self.minority_windows >= MIN_MINORITY_WINDOWS)

    def to_dict(self) -> dict:
        return {"consistency": round(self.consistency, 4), "split_cosine": round(self.split_cosine, 4),
                "minority_share": round(self.minority_share, 4), "windows": int(len(self.embedding.windows))}


def split_in_two(windows: np.ndarray) -> np.ndarray:
    """Group label (0 or 1) of each unit-length window embedding, by spherical 2-means seeded
    with the two least alike windows."""
    n = len(windows)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    sims = windows @ windows.T
    a, b = np.unravel_index(int(np.argmin(sims)), sims.shape)
    centres = windows[[a, b]].copy()
    labels = np.argmax(windows @ centres.T, axis=1)
    for _ in range(KMEANS_ROUNDS):
        for k in (0, 1):
            total = windows[labels == k].sum(axis=0)
            if total.any():
                centres[k] = total / max(float(np.linalg.norm(total)), 1e-12)
        new = np.argmax(windows @ centres.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def analyse_windows(embedding: Embedding) -> SpeakerAnalysis:
    windows = embedding.windows
    consistency = float(np.mean(windows @ embedding.vector))
    labels = split_in_two(windows)
    counts = np.bincount(labels, minlength=2)
    if counts.min() == 0:
        return SpeakerAnalysis(embedding, consistency, 1.0, 0.0, 0)
    centres = [windows[labels == k].mean(axis=0) for k in (0, 1)]
    return SpeakerAnalysis(embedding, consistency, cosine(*centres), float(counts.min() / counts.sum()),
                           int(counts.min()))


def speech_only(samples: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """The speech regions ((k, 2) [start, end) sample ranges) joined end to end: what the
    windows should see, as resemblyzer trims long silences before embedding."""
    if len(regions) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([samples[start:end] for start, end in regions]).astype(np.float32, copy=False)


def analyse_speech(speech: np.ndarray, sample_rate: int) -> SpeakerAnalysis:
    """Speaker analysis of audio that is speech only (see `speech_only`): a first pass over
    every `stride`-th window, then all of them when the first pass comes near a split."""
    audio = EncoderAudio(speech, sample_rate)  # resampled only where the windows embedded are
    starts = partial_starts(audio.n, WINDOWS_PER_S)
    stride = max(1, min(MAX_STRIDE, len(starts) // FIRST_PASS_MIN_WINDOWS))
    first = np.arange(0, len(starts), stride)
    embedded = embed_frames(audio.window_mels(starts[first]))
    analysis = analyse_windows(embedding_of(embedded, starts[first]))
    if stride == 1 or analysis.split_cosine >= MAX_SPLIT_COSINE + RECHECK_MARGIN:
        return analysis
    windows = np.empty((len(starts), embedded.shape[1]), np.float32)
    windows[first] = embedded
    rest = np.setdiff1d(np.arange(len(starts)), first)
    windows[rest] = embed_frames(audio.window_mels(starts[rest]))
    return analyse_windows(embedding_of(windows, starts))
