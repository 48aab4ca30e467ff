"""resemblyzer's speaker encoder, run with numpy: weights, LSTM forward pass, embeddings.

The network (Wan et al. 2018, "Generalized end-to-end loss for speaker verification", as
trained by resemblyzer): 40 mel bands -> 3-layer LSTM of 256 units -> the last hidden state of
the top layer -> linear 256 -> ReLU -> L2 normalisation. An utterance is cut into partial
windows of 160 frames (1.6 s) every 77 frames (1.3 per second); its embedding is the L2
normalised mean of the windows' embeddings. Every number here matches resemblyzer 0.1.4's
`VoiceEncoder.embed_utterance`, so its embeddings are resemblyzer's (checked against reference
figures from the original torch code in tests/audio/test_speaker_encoder.py).

Speed: the LSTM runs layer by layer over all windows at once. Each layer's input projection for
every time step is one large matrix product; only the recurrent product (windows x 256 by 256
x 1024) is left inside the loop over 160 steps. The sigmoid gates are computed as
0.5 + 0.5 tanh(x / 2) with the halving folded into the weights at load time, so one tanh covers
all four gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from shared.audio.speaker.mel import HOP, N_FFT, SAMPLE_RATE, mel_frames, mel_of_frames

HIDDEN = 256
EMBEDDING_SIZE = 256
LAYERS = 3
#: frames in one partial window (1.6 s at 10 ms per frame)
PARTIAL_FRAMES = 160
#: partial windows per second of audio, and the share of a last, incomplete window that must be
#: real audio for it to count (resemblyzer's defaults)
PARTIALS_PER_S = 1.3
MIN_LAST_COVERAGE = 0.75
#: resemblyzer raises quieter recordings to this RMS level (never lowers louder ones)
TARGET_RMS_DBFS = -30.0
WEIGHTS_FILE = "resemblyzer_encoder.npz"


@dataclass(frozen=True)
class _Layer:
    w_ih_t: np.ndarray  # (inputs, 4 * HIDDEN), gate rows i, f, g, o as torch orders them
    w_hh_t: np.ndarray  # (HIDDEN, 4 * HIDDEN)
    bias: np.ndarray  # (4 * HIDDEN,) b_ih + b_hh


@dataclass(frozen=True)
class EncoderWeights:
    layers: tuple[_Layer, ...]
    proj_t: np.ndarray  # (HIDDEN, EMBEDDING_SIZE)
    proj_bias: np.ndarray


@lru_cache(maxsize=1)
def load_weights() -> EncoderWeights:
    """The converted weights shipped in shared/data/speaker_encoder/ (source in SOURCE.md)."""
    ref = resources.files("shared.data").joinpath("speaker_encoder", WEIGHTS_FILE)
    with resources.as_file(ref) as path, np.load(path) as data:
        raw = {k: data[k].astype(np.float32) for k in data.files}
    # sigmoid(x) = 0.5 + 0.5 tanh(x / 2): halve the i, f, o rows so one tanh serves all gates
    scale = np.full(4 * HIDDEN, 0.5, dtype=np.float32)
    scale[2 * HIDDEN:3 * HIDDEN] = 1.0
    layers = []
    for n in range(LAYERS):
        w_ih = raw[f"lstm_weight_ih_l{n}"] * scale[:, None]
        w_hh = raw[f"lstm_weight_hh_l{n}"] * scale[:, None]
        bias = (raw[f"lstm_bias_ih_l{n}"] + raw[f"lstm_bias_hh_l{n}"]) * scale
        layers.append(_Layer(np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias))
    return EncoderWeights(tuple(layers), np.ascontiguousarray(raw["linear_weight"].T), raw["linear_bias"])


def embed_frames(mels: np.ndarray, weights: EncoderWeights | None = None) -> np.ndarray:
    """(batch, frames, 40) mel windows -> (batch, 256) L2-normalised embeddings."""
    w = weights or load_weights()
    x = np.ascontiguousarray(np.transpose(np.asarray(mels, dtype=np.float32), (1, 0, 2)))  # time-major
    steps, batch, _ = x.shape
    h = np.zeros((batch, HIDDEN), np.float32)
    for index, layer in enumerate(w.layers):
        gates_in = (x.reshape(steps * batch, -1) @ layer.w_ih_t + layer.bias).reshape(steps, batch, -1)
        last = index == len(w.layers) - 1
        out = None if last else np.empty((steps, batch, HIDDEN), np.float32)
        h = np.zeros((batch, HIDDEN), np.float32)
        c = np.zeros((batch, HIDDEN), np.float32)
        for t in range(steps):
            gates = np.tanh(gates_in[t] + h @ layer.w_hh_t)
            i = 0.5 + 0.5 * gates[:, :HIDDEN]
            f = 0.5 + 0.5 * gates[:, HIDDEN:2 * HIDDEN]
            g = gates[:, 2 * HIDDEN:3 * HIDDEN]
            o = 0.5 + 0.5 * gates[:, 3 * HIDDEN:]
            c = f * c + i * g
            h = o * np.tanh(c)
            if out is not None:
                out[t] = h
        if out is not None:
            x = out
    raw = np.maximum(h @ w.proj_t + w.proj_bias, 0.0)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return raw / np.maximum(norms, 1e-12)


def partial_starts(n_samples: int, windows_per_s: float = PARTIALS_PER_S) -> np.ndarray:
    """First mel frame of each partial window over `n_samples` of 16 kHz audio, as resemblyzer's
    `compute_partial_slices` places them: every 77 frames while a window still starts, then the
    last one dropped if less than MIN_LAST_COVERAGE of it is real audio (unless it is the only one)."""
    n_frames = math.ceil((n_samples + 1) / HOP)
    step = int(round(SAMPLE_RATE / windows_per_s / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"windows_per_s must leave no gap between windows: {windows_per_s}")
    starts = np.arange(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    window = PARTIAL_FRAMES * HOP
    coverage = (n_samples - starts[-1] * HOP) / window
    if coverage < MIN_LAST_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts


@dataclass(frozen=True)
class Embedding:
    """A recording's embedding, and the embeddings of the 1.6 s windows it is the mean of."""

    vector: np.ndarray  # (256,) L2-normalised
    windows: np.ndarray  # (n, 256) L2-normalised, one per window
    window_starts_s: np.ndarray  # (n,) where each window starts, in seconds of the input

    @property
    def window_s(self) -> float:
        return PARTIAL_FRAMES * HOP / SAMPLE_RATE


def utterance_windows(wav16k: np.ndarray, windows_per_s: float = PARTIALS_PER_S) -> tuple[np.ndarray, np.ndarray]:
    """The audio padded as resemblyzer pads it for its last window, and the first mel frame of
    each window (`partial_starts`)."""
    wav = np.asarray(wav16k, dtype=np.float32)
    starts = partial_starts(len(wav), windows_per_s)
    end = (int(starts[-1]) + PARTIAL_FRAMES) * HOP
    if end >= len(wav):
        wav = np.pad(wav, (0, end - len(wav)))
    return wav, starts


def window_mels(wav: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(len(starts), 160, 40) mel windows of `utterance_windows`' audio; each frame is computed
    once, however the windows overlap, and frames no window covers are not computed at all."""
    frames = np.asarray(starts)[:, None] + np.arange(PARTIAL_FRAMES)
    needed = np.unique(frames)
    return mel_frames(wav, needed)[np.searchsorted(needed, frames)]


def embedding_of(windows: np.ndarray, starts: np.ndarray) -> Embedding:
    """The utterance embedding of window embeddings (the normalised mean) and where they start."""
    mean = windows.mean(axis=0)
    return Embedding(mean / max(float(np.linalg.norm(mean)), 1e-12), windows, np.asarray(starts) * HOP / SAMPLE_RATE)


def embed_utterance(wav16k: np.ndarray, weights: EncoderWeights | None = None,
                    windows_per_s: float = PARTIALS_PER_S) -> Embedding:
    """resemblyzer's `embed_utterance` on 16 kHz mono audio, as given (no level change, no
    silence removal: see `encoder_input` for those). `windows_per_s` 0.625 places the windows
    edge to edge, for half the cost of resemblyzer's overlapping ones."""
    wav, starts = utterance_windows(wav16k, windows_per_s)
    return embedding_of(embed_frames(window_mels(wav, starts), weights), starts)


def encoder_input(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio at any rate -> what the encoder expects: 16 kHz, and raised to -30 dBFS RMS when
    quieter (resemblyzer's `normalize_volume(increase_only=True)`); the mel features are power,
    not log, so the level matters. Silence removal is the caller's: it knows where the speech is."""
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        common = math.gcd(int(sample_rate), SAMPLE_RATE)
        x = signal.resample_poly(x, SAMPLE_RATE // common, int(sample_rate) // common).astype(np.float32)
    return x * np.float32(level_gain(x))


def level_gain(x: np.ndarray) -> float:
    """The factor that raises audio quieter than TARGET_RMS_DBFS to it (1.0 for louder audio)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    if rms > 0.0:
        change_db = TARGET_RMS_DBFS - 20.0 * math.log10(rms)
        if change_db > 0:
            return 10.0 ** (change_db / 20.0)
    return 1.0


@lru_cache(maxsize=4)
def _resampling_filter(up: int, down: int) -> np.ndarray:
    """The low-pass filter scipy's resample_poly designs for this ratio by default."""
    half_len = 10 * max(up, down)
    return signal.firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0)).astype(np.float32)


class EncoderAudio:
    """`encoder_input` of a recording, read a stretch at a time: only the stretches the windows
    being embedded need are resampled. A stretch that starts on the resampler's grid (a multiple
    of `down` input samples) and has the filter's reach of input on both sides comes out as the
    same samples as resampling the whole; outside the audio it reads zeros, as resemblyzer pads.
    The level gain is measured on the input (speech has next to nothing above 8 kHz)."""

    def __init__(self, samples: np.ndarray, sample_rate: int) -> None:
        self.x = np.asarray(samples, dtype=np.float32)
        common = math.gcd(int(sample_rate), SAMPLE_RATE)
        self.up, self.down = SAMPLE_RATE // common, int(sample_rate) // common
        self.n = -(-len(self.x) * self.up // self.down)  # resample_poly's output length
        self.gain = np.float32(level_gain(self.x))
        # input samples either side of a stretch that the filter reaches, rounded up to the grid
        taps = len(_resampling_filter(self.up, self.down)) if self.up != self.down else 0
        self.reach = self.down * (-(-taps // (2 * self.up * self.down)) + 1)

    def read(self, start: int, stop: int) -> np.ndarray:
        """16 kHz samples [start, stop), zeros outside [0, n)."""
        out = np.zeros(stop - start, np.float32)
        lo, hi = max(start, 0), min(stop, self.n)
        if lo >= hi:
            return out
        if self.up == self.down:
            out[lo - start:hi - start] = self.x[lo:hi]
        else:
            first = max(0, (lo * self.down // self.up) // self.down * self.down - self.reach)
            last = min(len(self.x), -(-hi * self.down // self.up) + self.reach)
            y = signal.resample_poly(self.x[first:last], self.up, self.down,
                                     window=_resampling_filter(self.up, self.down))
            offset = first * self.up // self.down
            out[lo - start:hi - start] = y[lo - offset:hi - offset]
        return out * self.gain

    def window_mels(self, starts: np.ndarray) -> np.ndarray:
        """(len(starts), 160, 40) mel windows, as `window_mels` makes them from the whole."""
        span = (PARTIAL_FRAMES - 1) * HOP + N_FFT
        audio = np.stack([self.read(int(s) * HOP - N_FFT // 2, int(s) * HOP - N_FFT // 2 + span) for s in starts])
        frames = sliding_window_view(audio, N_FFT, axis=1)[:, ::HOP]
        return mel_of_frames(frames.reshape(-1, N_FFT)).reshape(len(starts), PARTIAL_FRAMES, -1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (both already unit length, so a dot product)."""
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
