"""Rotary position embeddings (plain and Llama-3 frequency scaling), half-rotation layout as in HF checkpoints."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from zoo.language.config import RopeConfig


def rope_inv_freq(rope: RopeConfig, head_dim: int) -> Tensor:
    """(head_dim // 2,) fp32 inverse frequencies, with llama3 scaling applied when configured."""
    inv = 1.0 / (rope.theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if rope.scaling:
        s = rope.scaling
        factor, low, high = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
        old_ctx = float(s["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
        wavelen = 2 * math.pi / inv
        # long wavelengths are divided by `factor`, short ones kept, the band between interpolated smoothly
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old_ctx / wavelen - low) / (high - low)
        mid = (1 - smooth) * scaled / factor + smooth * scaled
        is_mid = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv = torch.where(is_mid, mid, scaled)
    return inv.float()


def rope_cos_sin(inv_freq: Tensor, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos/sin tables for positions (b, l) -> each (b, 1, l, head_dim), computed in fp32 then cast."""
    freqs = positions.float()[..., None] * inv_freq.to(positions.device)  # (b, l, d/2)
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (b, h, l, d) by the tables; pairs are (i, i + d/2) as in the HF checkpoints' q/k layout."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin
