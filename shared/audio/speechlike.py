"""Is a recording mostly speech, or do music or noise dominate it? Syllables, counted by pitch.

Speech comes in syllables: a voiced stretch (the vowel, with a pitch) of 50-600 ms, three to
five of them a second while someone talks, between unvoiced consonants and short pauses. Music
is voiced for long notes or not at all (drums, chords that no single pitch fits), and noise
(hiss, a fan, traffic) has no pitch. So the measure is the number of syllable-length voiced
stretches per second of what the voice activity detector took for speech, with pitch tracked
by shared.audio.voiceprint's YIN. A soft background under a voice leaves most syllables
voiced; music or noise as loud as the voice hides them.

Only an excerpt is measured (`EXCERPT_PIECES` pieces spread over the speech, `EXCERPT_S` in
all): the rate is an average, and tracking pitch over three minutes would cost as much as the
rest of the clean-up (12 s give the same verdicts as all the speech on every recording
measured). Calibration on real recordings: docs/VOICE_MATCH.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio.voiceprint import track_pitch

#: a voiced stretch this long is a syllable's nucleus: shorter is a tracking blip, longer a
#: held note or a hum
SYLLABLE_S = (0.05, 0.6)
#: fewer syllables a second of "speech" than this and the recording is not mostly speech: one
#: voice alone makes 3.2-3.8, with music 5 dB under it still 1.7-1.9; music alone 0.04-0.42
MIN_SYLLABLES_PER_S = 1.0
EXCERPT_S = 12.0
EXCERPT_PIECES = 6


@dataclass(frozen=True)
class SpeechLikeness:
    syllables_per_s: float
    #: seconds of the speech the rate was measured over
    measured_s: float

    @property
    def speech(self) -> bool:
        return self.syllables_per_s >= MIN_SYLLABLES_PER_S

    def to_dict(self) -> dict:
        return {"syllables_per_s": round(self.syllables_per_s, 2), "measured_s": round(self.measured_s, 1)}


def excerpt(x: np.ndarray, sample_rate: int, seconds: float = EXCERPT_S, pieces: int = EXCERPT_PIECES) -> np.ndarray:
    """At most `seconds` of `x`: `pieces` equal pieces spread evenly over it, joined."""
    total = round(seconds * sample_rate)
    if len(x) <= total:
        return x
    size = total // pieces
    starts = np.linspace(0, len(x) - size, pieces).astype(np.int64)
    return np.concatenate([x[start:start + size] for start in starts])


def speech_likeness(speech: np.ndarray, sample_rate: int) -> SpeechLikeness:
    """Syllables per second in `speech` (the speech regions of a recording, joined: see
    shared.audio.speaker.checks.speech_only); 0 when there is none."""
    part = excerpt(np.asarray(speech, dtype=np.float32), sample_rate)
    seconds = len(part) / sample_rate
    if seconds == 0:
        return SpeechLikeness(0.0, 0.0)
    track = track_pitch(part, sample_rate)
    edges = np.diff(np.concatenate(([0], track.voiced.astype(np.int8), [0])))
    runs_s = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) * track.hop_s
    syllables = int(np.count_nonzero((runs_s >= SYLLABLE_S[0]) & (runs_s <= SYLLABLE_S[1])))
    return SpeechLikeness(syllables / seconds, seconds)
