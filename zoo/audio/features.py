"""Whisper log-mel features in torch, batched.

The front end of Whisper (Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision", 2022) and of
every encoder built on it (Qwen2-Audio, Audio Flamingo 3): 16 kHz audio padded or cut to a fixed window (30 s),
a 400-point Hann STFT with hop 160 (10 ms), power spectrum, a Slaney-normalised Slaney-scale mel filter bank
(0-8 kHz), log10 with a 1e-10 floor, dynamic range clamped to 8 (i.e. 80 dB) below each clip's maximum, then
`(x + 4) / 4`. The last STFT frame is dropped so 480,000 samples give exactly 3,000 frames.

The output equals transformers' `WhisperFeatureExtractor` (checked to 1e-4 in tests); unlike it, the whole batch is
one torch computation on any device, and the per-clip maximum is taken per batch row, as the reference does.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from zoo.audio.io import AudioError

__all__ = [
    "HOP_LENGTH",
    "N_FFT",
    "N_SAMPLES",
    "SAMPLING_RATE",
    "log_mel",
    "mel_filter_bank",
    "num_frames",
    "frame_mask",
]

SAMPLING_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLING_RATE  # 480,000 samples -> 3,000 frames


# ---------------------------------------------------------------------------------------------------------------
# Mel filter bank (Slaney scale, Slaney area normalisation), computed in float64 then cast once
# ---------------------------------------------------------------------------------------------------------------

_MEL_BREAK_HZ = 1000.0  # linear below, logarithmic above (Slaney's Auditory Toolbox)
_MEL_BREAK = 15.0  # = 3 * 1000 / 200: the mel value at the break
_LOG_STEP = math.log(6.4) / 27.0  # log-spaced region: 27 mels per factor 6.4 in frequency


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = 3.0 * hz / 200.0
    log = _MEL_BREAK + np.log(np.maximum(hz, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = 200.0 * mel / 3.0
    log = _MEL_BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MEL_BREAK) - _MEL_BREAK))
    return np.where(mel >= _MEL_BREAK, log, linear)


@lru_cache(maxsize=8)
def _mel_filter_bank_np(n_mels: int, n_fft: int, sampling_rate: int, f_min: float, f_max: float) -> np.ndarray:
    n_freqs = n_fft // 2 + 1
    fft_hz = np.linspace(0.0, sampling_rate // 2, n_freqs)
    # n_mels triangles need n_mels + 2 edges, equally spaced on the mel scale.
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    offsets = edges_hz[None, :] - fft_hz[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]  # climbs from the left edge to the centre
    falling = offsets[:, 2:] / widths[1:]  # descends from the centre to the right edge
    bank = np.maximum(0.0, np.minimum(rising, falling))  # (n_freqs, n_mels)
    # Slaney normalisation: every triangle has unit area, so wide high-frequency bands are not over-weighted.
    bank *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[None, :]
    return bank


def mel_filter_bank(
    n_mels: int = 128,
    *,
    n_fft: int = N_FFT,
    sampling_rate: int = SAMPLING_RATE,
    f_min: float = 0.0,
    f_max: float = 8000.0,
) -> torch.Tensor:
    """Triangular mel filters on the STFT bins.

    Args:
        n_mels: number of mel bands (Whisper uses 80, Whisper-large-v3 and Qwen2-Audio 128).
        n_fft: FFT size; the bank covers its `n_fft // 2 + 1` non-negative bins.
        sampling_rate: audio rate in Hz.
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz.

    Returns:
        (n_fft // 2 + 1, n_mels) float32.
    """
    return torch.from_numpy(_mel_filter_bank_np(n_mels, n_fft, sampling_rate, float(f_min), float(f_max))).float()


# ---------------------------------------------------------------------------------------------------------------
# Log-mel features
# ---------------------------------------------------------------------------------------------------------------


def _as_batch(audio: object, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad or cut to `n_samples`. Returns (batch, n_samples) float32 and the original lengths (batch,) int64."""
    if isinstance(audio, (list, tuple)):
        rows = [torch.as_tensor(np.asarray(a, dtype=np.float32) if not torch.is_tensor(a) else a) for a in audio]
        if not rows:
            raise AudioError("log_mel: empty list of audio clips")
        for i, r in enumerate(rows):
            if r.ndim != 1:
                raise AudioError(f"log_mel: clip {i} must be 1-D (samples,), got shape {tuple(r.shape)}")
        lengths = torch.tensor([r.shape[0] for r in rows], dtype=torch.long)
        out = torch.zeros(len(rows), n_samples, dtype=torch.float32, device=rows[0].device)
        for i, r in enumerate(rows):
            n = min(r.shape[0], n_samples)
            out[i, :n] = r[:n].float()
        return out, lengths
    x = audio if torch.is_tensor(audio) else torch.from_numpy(np.asarray(audio, dtype=np.float32))
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise AudioError(f"log_mel: expected (samples,) or (batch, samples), got shape {tuple(x.shape)}")
    x = x.float()
    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    if x.shape[1] >= n_samples:
        return x[:, :n_samples], lengths
    return torch.nn.functional.pad(x, (0, n_samples - x.shape[1])), lengths


def num_frames(lengths: torch.Tensor | int, n_samples: int = N_SAMPLES, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Valid feature frames per clip: frames whose hop start lies inside the (cut) audio, `ceil(len / hop)`.

    This is how the reference's `attention_mask[:, ::hop]` counts them, and what Qwen2-Audio uses to decide how
    many `<|AUDIO|>` positions a clip gets.

    Args:
        lengths: clip lengths in samples, (batch,) or an int.
        n_samples: window length in samples (longer clips are cut).
        hop_length: STFT hop.

    Returns:
        (batch,) int64.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long).clamp(max=n_samples)
    return (lengths + hop_length - 1) // hop_length


def frame_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """1 for valid frames, 0 for padding: (batch, n_frames) int64 from frame counts (batch,)."""
    return (torch.arange(n_frames, device=lengths.device)[None, :] < lengths[:, None]).long()


def log_mel(
    audio: object,
    sampling_rate: int = SAMPLING_RATE,
    n_mels: int = 128,
    *,
    n_samples: int = N_SAMPLES,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    return_lengths: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Whisper log-mel spectrogram of a batch of clips, padded (with zeros) or cut to the window.

    Args:
        audio: (samples,) or (batch, samples) float array/tensor, or a list of 1-D clips of any lengths; mono,
            already at `sampling_rate` (see `zoo.audio.io` to load and resample files).
        sampling_rate: must be 16 kHz: the filter bank and window are defined for it.
        n_mels: 80 or 128 bands.
        n_samples: window in samples (30 s); the output has `n_samples // hop_length` frames.
        n_fft: STFT size.
        hop_length: STFT hop.
        return_lengths: also return the valid frame count of each clip (see `num_frames`).

    Returns:
        (batch, n_mels, n_samples // hop_length) float32 on the input's device; with `return_lengths`, also the
        frame counts (batch,) int64.
    """
    if sampling_rate != SAMPLING_RATE:
        raise AudioError(f"log_mel: audio must be resampled to {SAMPLING_RATE} Hz first (got {sampling_rate} Hz)")
    x, lengths = _as_batch(audio, n_samples)  # (b, n_samples)
    window = torch.hann_window(n_fft, device=x.device)
    # center=True with reflect padding: frame t is centred on sample t * hop (Whisper's convention).
    spec = torch.stft(x, n_fft, hop_length, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs() ** 2  # (b, n_freqs, frames); the extra last frame is dropped
    filters = mel_filter_bank(n_mels, n_fft=n_fft, sampling_rate=sampling_rate).to(x.device)
    mel = filters.T @ power  # (b, n_mels, frames)
    logs = torch.clamp(mel, min=1e-10).log10()
    # Dynamic range: at most 8 decades (80 dB) below the loudest bin of *this* clip.
    peak = logs.amax(dim=(1, 2), keepdim=True)
    logs = torch.maximum(logs, peak - 8.0)
    feats = (logs + 4.0) / 4.0
    if return_lengths:
        return feats, num_frames(lengths, n_samples, hop_length)
    return feats
