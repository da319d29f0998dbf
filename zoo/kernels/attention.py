"""Scaled dot-product attention with grouped KV heads: torch SDPA everywhere, flash-attn on CUDA when installed.

Paper: Vaswani et al. 2017 (attention); Ainslie et al. 2023, "GQA" (grouped KV heads); Dao 2023, "FlashAttention-2".
Official CUDA kernel: https://github.com/Dao-AILab/flash-attention (`flash_attn_func`).

Layering: :func:`attention` dispatches (``zoo.kernels.dispatch``, op ``"attention"``) to ``flash_attn_func`` for
fp16/bf16 CUDA tensors without an explicit mask, else to :func:`attention_torch` (``F.scaled_dot_product_attention``);
:func:`attention_ref` is the explicit softmax(QK^T)V, the reference and the minimal version.

Design choices:

* Causal masking is aligned bottom-right, as in flash-attn: query ``i`` of ``lq`` sees key ``j`` of ``lk`` when
  ``j <= i + lk - lq``. With a KV cache the new queries are the last ``lq`` positions, so this is the right
  alignment for decode and chunked prefill (SDPA's own ``is_causal`` aligns top-left, and is only used when
  ``lq == lk``).
* A single decode query (``lq == 1``) needs no mask at all, so none is built: decode builds no mask per step.
* Grouped KV heads are not repeated in memory: for one query the ``rep = hq // hkv`` query heads of a group are
  folded into the query-length axis (one matmul per KV head); otherwise SDPA's ``enable_gqa`` handles them.
* A query row whose mask excludes every key (left padding) returns zeros instead of NaN, so padded positions cannot
  poison later layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.kernels import dispatch

__all__ = ["attention", "attention_torch", "attention_ref"]


def _check(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.shape != k.shape:
        raise ValueError(f"attention: q, k, v must be (batch, heads, seqlen, head_dim) with k and v alike, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3] or q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"attention: q {tuple(q.shape)} and k {tuple(k.shape)} must share batch and head_dim, and "
                         f"query heads must be a multiple of kv heads")


def _causal_keep(lq: int, lk: int, device: torch.device) -> Tensor:
    """(lq, lk) bool, True where query i (the last lq positions of lk) may attend key j."""
    return torch.ones(lq, lk, dtype=torch.bool, device=device).tril(lk - lq)


def attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """Multi-head attention with grouped KV heads.

    Shapes: b batch, hq query heads, hkv kv heads (``hq % hkv == 0``), lq queries, lk keys, e head dim.

    Args:
        q: (b, hq, lq, e).
        k: (b, hkv, lk, e).
        v: (b, hkv, lk, e).
        causal: mask future keys, aligned bottom-right (the queries are the last lq of the lk positions).
        attn_mask: broadcastable to (b, hq, lq, lk): bool (True = attend) or float (added to the scores); combined
            with ``causal``.
        scale: score scale, default ``e ** -0.5``.

    Returns:
        (b, hq, lq, e) in q's dtype.
    """
    _check(q, k, v)
    if (
        attn_mask is None
        and q.dtype in (torch.float16, torch.bfloat16)
        and dispatch.use_cuda_kernel("attention", q)
    ):
        flash_attn_func = dispatch.load("flash_attn").flash_attn_func
        # flash-attn takes (b, l, h, e), handles grouped heads itself, and aligns causal bottom-right like us.
        out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=scale,
                              causal=causal)
        return out.transpose(1, 2)
    return attention_torch(q, k, v, causal=causal, attn_mask=attn_mask, scale=scale)


def attention_torch(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """Attention through ``F.scaled_dot_product_attention``; arguments and returns as :func:`attention`."""
    b, hq, lq, e = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    rep = hq // hkv
    need_causal = causal and lq > 1  # a single query is the last position: it sees every key

    if attn_mask is None and not need_causal:
        if rep > 1 and lq == 1:
            # Decode: fold the group's query heads into the query axis, (b, hkv, rep, e), so K/V are read once.
            out = F.scaled_dot_product_attention(q.reshape(b, hkv, rep, e), k, v, scale=scale)
            return out.reshape(b, hq, 1, e)
        return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=rep > 1)
    if attn_mask is None and lq == lk:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=rep > 1)

    mask = attn_mask
    if mask is not None and mask.dtype != torch.bool:
        # Float masks: turn into bool + additive part only when needed; -inf entries are the "masked" ones.
        keep = _causal_keep(lq, lk, q.device) if need_causal else None
        if keep is not None:
            mask = mask.masked_fill(~keep, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), scale=scale, enable_gqa=rep > 1)
    if need_causal:
        keep = _causal_keep(lq, lk, q.device)
        mask = keep if mask is None else mask & keep
    # Rows with no key at all (left padding under a causal mask) would be NaN: let them see every key, zero them.
    has_key = mask.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, scale=scale, enable_gqa=rep > 1)
    return out * has_key.to(out.dtype)


def attention_ref(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """softmax(Q K^T * scale + mask) V written out, fp32; fully masked rows give zeros. Same arguments as above."""
    _check(q, k, v)
    b, hq, lq, e = q.shape
    rep = hq // k.shape[1]
    lk = k.shape[2]
    kf = k.float().repeat_interleave(rep, dim=1)
    vf = v.float().repeat_interleave(rep, dim=1)
    scores = q.float() @ kf.transpose(-1, -2) * (e**-0.5 if scale is None else scale)  # (b, hq, lq, lk)
    keep = torch.ones(lq, lk, dtype=torch.bool, device=q.device)
    if causal:
        keep = _causal_keep(lq, lk, q.device)
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        keep = keep & attn_mask
    elif attn_mask is not None:
        scores = scores + attn_mask.float()
    scores = scores.masked_fill(~keep, float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return (probs @ vf).to(q.dtype)
