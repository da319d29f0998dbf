"""HybridCache: what decoding carries between steps.

Attention blocks keep K/V that grow with the sequence (preallocated, grown by doubling so a decode step never
reallocates). Mamba blocks keep a fixed-size conv window (b, conv_dim, k) and SSM state (b, h, p, n) in fp32, so
their part of the cache does not grow with length: the point of the hybrid design.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class KVState:
    """Growing K/V buffers of one attention block; valid entries are [:, :, :length]."""

    k: Tensor  # (b, kv_heads, capacity, head_dim)
    v: Tensor
    length: int = 0

    def append(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Append (b, kv, l, d) keys/values; return views over everything cached so far."""
        end = self.length + k_new.shape[2]
        if end > self.k.shape[2]:
            cap = max(end, 2 * self.k.shape[2], 16)
            grow = lambda t: torch.cat([t[:, :, : self.length], t.new_empty(*t.shape[:2], cap - self.length,  # noqa: E731
                                                                               t.shape[3])], dim=2)
            self.k, self.v = grow(self.k), grow(self.v)
        self.k[:, :, self.length:end] = k_new
        self.v[:, :, self.length:end] = v_new
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def nbytes(self) -> int:
        return 2 * self.k[:, :, : self.length].numel() * self.k.element_size()


@dataclass
class MambaState:
    """Fixed-size recurrent state of one Mamba block."""

    conv: Tensor  # (b, conv_dim, conv_kernel): the last k inputs of the conv, model dtype
    ssm: Tensor  # (b, heads, head_dim, state) fp32

    def nbytes(self) -> int:
        return self.conv.numel() * self.conv.element_size() + self.ssm.numel() * self.ssm.element_size()


class HybridCache:
    """Per-block decode state plus the bookkeeping shared by all blocks (length, padding mask, positions).

    Args:
        layers: one entry per block: KVState, MambaState, or None (mlp / linear blocks are stateless).
        batch_size: rows in the batch.
    """

    def __init__(self, layers: list[KVState | MambaState | None], batch_size: int, device: torch.device) -> None:
        self.layers = layers
        self.batch_size = batch_size
        self.seq_len = 0  # tokens seen (including left padding)
        self.key_mask: Tensor | None = None  # (b, seq_len) bool, None while no row has padding
        self.next_position = torch.zeros(batch_size, dtype=torch.long, device=device)  # RoPE position of next token

    def advance(self, attention_mask: Tensor | None, new_len: int) -> None:
        """Record `new_len` tokens, with their (b, new_len) 0/1 mask or None (all real)."""
        if attention_mask is not None or self.key_mask is not None:
            new = (attention_mask.bool() if attention_mask is not None else
                   torch.ones(self.batch_size, new_len, dtype=torch.bool, device=self.next_position.device))
            old = self.key_mask if self.key_mask is not None else torch.ones(
                self.batch_size, self.seq_len, dtype=torch.bool, device=new.device)
            self.key_mask = torch.cat([old, new], dim=1)
            self.next_position = self.next_position + new.long().sum(1)
        else:
            self.next_position = self.next_position + new_len
        self.seq_len += new_len

    def reorder(self, index: Tensor) -> None:
        """Keep rows `index` (beam search / dropping finished rows)."""
        for st in self.layers:
            if isinstance(st, KVState):
                st.k, st.v = st.k.index_select(0, index), st.v.index_select(0, index)
            elif isinstance(st, MambaState):
                st.conv, st.ssm = st.conv.index_select(0, index), st.ssm.index_select(0, index)
        if self.key_mask is not None:
            self.key_mask = self.key_mask.index_select(0, index)
        self.next_position = self.next_position.index_select(0, index)
        self.batch_size = int(index.numel())

    def kv_bytes(self) -> int:
        return sum(s.nbytes() for s in self.layers if isinstance(s, KVState))

    def ssm_bytes(self) -> int:
        return sum(s.nbytes() for s in self.layers if isinstance(s, MambaState))
