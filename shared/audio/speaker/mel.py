"""The speaker encoder's input: a mel power spectrogram, as resemblyzer computes it with librosa.

The network was trained on `librosa.feature.melspectrogram(y, sr=16000, n_fft=400,
hop_length=160, n_mels=40)`: 25 ms Hann windows every 10 ms, centred (the signal padded with
n_fft // 2 zeros at each end, librosa >= 0.10's default), power spectrum |X|^2, 40 Slaney-style
mel bands with Slaney area normalisation, and no logarithm. The weights only make sense on those
exact features, so this module reproduces them rather than anything more usual.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters from 0 Hz to Nyquist, each scaled to unit
    area over its mel width (librosa's norm="slaney")."""
    fft_hz = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # periodic Hann (scipy's get_window("hann", N, fftbins=True)), as librosa uses
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)


def mel_frames(wav: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, N_MELS) float32 mel power frames of 16 kHz mono audio; frame i is centred on
    sample i * HOP, and there are 1 + len(wav) // HOP of them. `frames`: only these (indices),
    for a caller that needs a few windows of a long recording."""
    wav = np.asarray(wav, dtype=np.float32)
    padded = np.pad(wav, N_FFT // 2)
    n_frames = 1 + len(wav) // HOP
    windows = sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    if frames is not None:
        windows = windows[frames]
    return mel_of_frames(windows)


def mel_of_frames(frames: np.ndarray) -> np.ndarray:
    """(n, N_MELS) mel power of (n, N_FFT) frames of audio, windowed here."""
    spectrum = np.fft.rfft(frames * _window(), axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    return power @ mel_filterbank().T
