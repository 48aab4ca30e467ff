"""How much a voice sounds like its owner: a 0-100 match score with a band, from embeddings.

After a clone, the new voice speaks `CALIBRATION_PHRASE`; the embedding of that speech is
compared with the embedding of the owner's cleaned sample. The raw cosine is mapped linearly
onto 0-100 between two anchors measured on real recordings (docs/VOICE_MATCH.md):

* `DIFFERENT_SPEAKERS_COSINE` 0.60: the top of what two different real people score (LJ Speech
  against the LibriVox reader: 0.53-0.60 for 6 s excerpts against a whole sample), and about
  what the offline espeak stand-in scores against the person it imitates (0.59): score 0;
* `SAME_SPEAKER_COSINE` 0.95: the median of a real person's own 6 s excerpts against their
  whole sample (0.92-0.98): score 100.

Bands: "close" from 65 (cosine 0.83), "fair" from 35 (0.72), "far" below. "far" starts more than
0.1 above anything two different people scored, so a voice that is merely human-like is never
called fair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio.speaker.checks import speech_only
from shared.audio.speaker.encoder import PARTIALS_PER_S, cosine, embed_utterance, encoder_input
from shared.audio.vad import detect_speech

#: about 7 s spoken: long enough for four overlapping 1.6 s windows, short enough to cost
#: ~100 characters at the provider per clone
CALIBRATION_PHRASE = ("This is my own voice. I recorded it on a quiet morning, "
                      "and I am glad to hear it speak my notes.")
DIFFERENT_SPEAKERS_COSINE = 0.60
SAME_SPEAKER_COSINE = 0.95
CLOSE_FROM = 65
FAIR_FROM = 35


@dataclass(frozen=True)
class MatchScore:
    cosine: float
    score: int  # 0-100
    band: str  # "close" | "fair" | "far"

    def to_dict(self) -> dict:
        return {"score": self.score, "band": self.band, "cosine": round(self.cosine, 4)}


def match_score(cos: float) -> MatchScore:
    share = (cos - DIFFERENT_SPEAKERS_COSINE) / (SAME_SPEAKER_COSINE - DIFFERENT_SPEAKERS_COSINE)
    score = int(round(100.0 * min(1.0, max(0.0, share))))
    band = "close" if score >= CLOSE_FROM else "fair" if score >= FAIR_FROM else "far"
    return MatchScore(float(cos), score, band)


def speech_embedding(samples: np.ndarray, sample_rate: int,
                     windows_per_s: float = PARTIALS_PER_S, max_speech_s: float | None = None) -> np.ndarray | None:
    """(256,) embedding of the speech in a recording (pauses cut out), or None if it has none.
    A short phrase wants resemblyzer's overlapping windows; a long note is as well served by
    edge-to-edge ones (shared.audio.speaker.checks.WINDOWS_PER_S) at half the cost.
    `max_speech_s` keeps only the first that many seconds of speech (the embedding's cost is
    nearly all in the windows it embeds)."""
    regions = detect_speech(samples, sample_rate).padded_regions(0.0, 0.2)
    speech = speech_only(samples, regions)
    if max_speech_s is not None:
        speech = speech[: int(max_speech_s * sample_rate)]
    if len(speech) == 0:
        return None
    return embed_utterance(encoder_input(speech, sample_rate), windows_per_s=windows_per_s).vector


def score_speech(samples: np.ndarray, sample_rate: int, owner_embedding: np.ndarray,
                 windows_per_s: float = PARTIALS_PER_S, max_speech_s: float | None = None) -> MatchScore | None:
    """How much the speech in `samples` sounds like the owner of `owner_embedding`; None when
    there is no speech to judge. `max_speech_s`: judge only the first that many seconds of it."""
    embedding = speech_embedding(samples, sample_rate, windows_per_s, max_speech_s)
    if embedding is None:
        return None
    return match_score(cosine(embedding, np.asarray(owner_embedding, dtype=np.float32)))
