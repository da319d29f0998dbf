"""Attention mixer: GQA with fused q/k/v projection, RoPE or none (Nemotron-H is NoPE), optional q/k/v bias (Qwen2).

The projection is one `qkv` Linear (the checkpoint's q_proj, k_proj, v_proj concatenated on load, split on save)
so a decode step runs one matmul instead of three. Masks are built once per forward by the model and passed in
`ctx`, never per block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from zoo.kernels.attention import attention, attention_torch
from zoo.language.cache import KVState
from zoo.language.config import BlockSpec, LMConfig
from zoo.language.rope import apply_rope

if TYPE_CHECKING:
    from zoo.language.model import ForwardContext


class Attention(nn.Module):
    """Causal grouped-query attention.

    Shapes: b batch, l new tokens, t tokens in cache after this step, h query heads, g kv heads, d head_dim.
    """

    def __init__(self, config: LMConfig, block: BlockSpec) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.block_kv_heads(block)
        self.head_dim = config.head_dim
        q, kv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        self.split_sizes = (q, kv, kv)
        self.qkv = nn.Linear(config.hidden_size, q + 2 * kv, bias=config.attention_bias)
        self.o_proj = nn.Linear(q, config.hidden_size, bias=False)
        self.use_rope = config.rope is not None

    def new_state(self, batch: int, device: torch.device, dtype: torch.dtype, capacity: int = 256) -> KVState:
        shape = (batch, self.num_kv_heads, capacity, self.head_dim)
        return KVState(torch.empty(shape, device=device, dtype=dtype), torch.empty(shape, device=device, dtype=dtype))

    def forward(self, x: Tensor, ctx: ForwardContext, state: KVState | None = None) -> Tensor:
        """x: (b, l, hidden) -> (b, l, hidden)."""
        b, l, _ = x.shape
        q, k, v = self.qkv(x).split(self.split_sizes, dim=-1)
        q = q.view(b, l, self.num_heads, self.head_dim).transpose(1, 2)  # (b, h, l, d)
        k = k.view(b, l, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (b, g, l, d)
        v = v.view(b, l, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.use_rope:
            q, k = apply_rope(q, ctx.rope_cos, ctx.rope_sin), apply_rope(k, ctx.rope_cos, ctx.rope_sin)
        if state is not None:
            k, v = state.append(k, v)  # (b, g, t, d)
        mask = ctx.attn_mask
        # zoo.kernels.attention: flash-attn on CUDA when installed; on CPU a decode query folds the query heads of
        # each KV group into one matmul instead of SDPA's enable_gqa path (1.2-3x faster at 1k-3k context).
        y = attention(q, k, v, causal=mask is None and ctx.causal_needed, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(b, l, self.num_heads * self.head_dim))

    def step(self, x: Tensor, state: KVState, cos: Tensor | None, sin: Tensor | None) -> Tensor:
        """One decode token with no padding in the cache: x (b, hidden) -> (b, hidden); K/V appended to `state`.

        `cos`/`sin` are the RoPE tables of this position, (b, 1, 1, head_dim), or None without RoPE. One query at
        the last position sees every cached key, so no mask is needed.
        """
        b = x.shape[0]
        q, k, v = self.qkv(x).split(self.split_sizes, dim=-1)
        q = q.view(b, self.num_heads, 1, self.head_dim)  # (b, h, 1, d): with l == 1 the view is the transpose
        k = k.view(b, self.num_kv_heads, 1, self.head_dim)
        v = v.view(b, self.num_kv_heads, 1, self.head_dim)
        if self.use_rope:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = state.append(k, v)  # (b, g, t, d)
        # CPU: straight to the torch kernel (the GQA decode fold); CUDA: through dispatch (flash-attn if installed)
        y = attention(q, k, v, causal=False) if x.is_cuda else attention_torch(q, k, v, causal=False)
        return self.o_proj(y.reshape(b, self.num_heads * self.head_dim))
