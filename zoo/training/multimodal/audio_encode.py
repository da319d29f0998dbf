"""Audio features for training on cropped windows.

The released encoder always runs on a full 30 s window (3000 mel frames -> 1500 positions), because Whisper's
position table is absolute. A few-second training clip then spends >90% of the encoder's compute on padding. Padded
positions are masked as attention keys and never feed a valid token, so running the same layers on a window cropped
just past the clip's last frame gives the same valid tokens (tested against the full-window forward in
tests/test_mm_audio.py). Evaluation keeps the full-window path of `AudioLanguageModel.forward`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.audio.features import log_mel
from zoo.audio.whisper import audio_token_counts, conv_output_lengths

__all__ = ["CROP_MARGIN", "cropped_features", "encode_cropped"]

CROP_MARGIN = 8
"""Mel frames kept past the longest clip: covers the receptive field of the two convolutions and the pooling pair
of the last valid token."""


def cropped_features(waves: list[Tensor], n_mels: int, max_frames: int = 3000) -> tuple[Tensor, Tensor]:
    """Log-mel features of clips on a window just long enough for the longest one.

    Args:
        waves: 1-D float waveforms at 16 kHz.
        n_mels: Mel bins of the encoder.
        max_frames: The encoder's full window (clips are cut there, as the full-window path does).

    Returns:
        features (n, n_mels, f) with f even and <= max_frames, and valid frame counts (n,) int64.
    """
    longest = max(int(w.shape[0]) for w in waves) // 160 + CROP_MARGIN
    frames = min(max_frames, longest + longest % 2)
    feats, lengths = log_mel(waves, 16000, n_mels, n_samples=frames * 160, return_lengths=True)
    return feats, lengths


def encode_cropped(model: torch.nn.Module, features: Tensor, lengths: Tensor) -> Tensor:
    """Encoder + projector on cropped windows, keeping each clip's valid tokens.

    Args:
        model: An `AudioLanguageModel` (its `audio_tower` and `projector` are used).
        features: (n, m, f) log-mel features, f <= the full window, f even.
        lengths: (n,) valid mel frames per clip.

    Returns:
        (sum of valid tokens, hidden), clips in order: what `encode_audio` gives on full windows.
    """
    tower = model.audio_tower
    x = features.to(tower.conv1.weight.dtype)
    x = F.gelu(tower.conv1(x))
    x = F.gelu(tower.conv2(x)).transpose(1, 2) * tower.embed_scale  # (n, P', d)
    x = x + tower.embed_positions.weight[: x.shape[1]].to(x.dtype)
    valid = conv_output_lengths(lengths.to(x.device))
    key_mask = torch.arange(x.shape[1], device=x.device)[None, :] < valid[:, None]
    for layer in tower.layers:
        x = layer(x, key_mask)
    tokens = model.projector(tower.forward_head(x))  # (n, P'/2, hidden)
    counts = audio_token_counts(lengths).to(tokens.device)
    keep = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < counts[:, None]
    return tokens[keep]
