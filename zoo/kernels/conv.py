"""Causal depthwise conv1d (the short convolution in front of Mamba-2's SSM), with state, and its decode step.

Official CUDA kernels: https://github.com/Dao-AILab/causal-conv1d (`causal_conv1d_fn`, `causal_conv1d_update`).

For channel ``d`` and kernel width ``k``: ``y[d, t] = act(bias[d] + sum_j weight[d, j] * x[d, t - (k - 1) + j])``,
with inputs before the sequence taken from ``initial_state`` (or zero).

Layering: :func:`causal_conv1d` / :func:`causal_conv1d_step` dispatch (``zoo.kernels.dispatch``, op ``"conv"``) to
the ``causal_conv1d`` package on CUDA, else to :func:`causal_conv1d_torch` / :func:`causal_conv1d_step_torch`;
:func:`causal_conv1d_ref` is the literal sum over taps (the reference, and also the minimal version).

The decode state is ``(b, d, k)``: the last ``k`` inputs, oldest first, the layout transformers' cache uses. Only its
last ``k - 1`` columns influence the future (a step shifts the oldest one out before reading).

Design choices:

* The torch path writes the conv as ``k`` shifted multiply-adds over the padded input instead of ``F.conv1d``:
  for a depthwise conv with ``k = 4`` this is several times faster on CPU and differentiates the same.
* With ``seq_idx``, tap ``j`` of output ``t`` is zeroed when its input lies in another document; an
  ``initial_state`` is treated as part of the first document.
* The final state is computed in torch on every backend (it is a slice of the input), so both backends return the
  same ``(b, d, k)`` layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.kernels import dispatch

__all__ = [
    "causal_conv1d", "causal_conv1d_step", "causal_conv1d_torch", "causal_conv1d_step_torch", "causal_conv1d_ref",
]


def _activate(y: Tensor, activation: str | None) -> Tensor:
    if activation is None:
        return y
    if activation in ("silu", "swish"):
        return F.silu(y)
    raise ValueError(f"causal_conv1d: unknown activation {activation!r}; expected 'silu', 'swish' or None")


def _check(x: Tensor, weight: Tensor, bias: Tensor | None, initial_state: Tensor | None,
           seq_idx: Tensor | None) -> None:
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: x must be (batch, channels, seqlen), got {tuple(x.shape)}")
    b, d, seqlen = x.shape
    if weight.dim() != 2 or weight.shape[0] != d:
        raise ValueError(f"causal_conv1d: weight must be ({d}, kernel), got {tuple(weight.shape)}")
    k = weight.shape[1]
    if bias is not None and bias.shape != (d,):
        raise ValueError(f"causal_conv1d: bias must be ({d},), got {tuple(bias.shape)}")
    if initial_state is not None and initial_state.shape != (b, d, k):
        raise ValueError(f"causal_conv1d: initial_state must be {(b, d, k)}, got {tuple(initial_state.shape)}")
    if seq_idx is not None and seq_idx.shape != (b, seqlen):
        raise ValueError(f"causal_conv1d: seq_idx must be {(b, seqlen)}, got {tuple(seq_idx.shape)}")


def _padded_input(x: Tensor, k: int, initial_state: Tensor | None) -> Tensor:
    """(b, d, k + l): the k inputs before x (initial_state or zeros), then x, in x's dtype."""
    if initial_state is None:
        return F.pad(x, (k, 0))
    return torch.cat([initial_state.to(x.dtype), x], dim=-1)


def _final_state(xpad: Tensor, k: int, seg: Tensor | None) -> Tensor:
    """The last k inputs; with segments, inputs of earlier documents than the last one are zeroed."""
    state = xpad[..., -k:]
    if seg is not None:
        seg_tail = seg[:, -k:]  # (b, k)
        state = state * (seg_tail == seg_tail[:, -1:]).unsqueeze(1).to(state.dtype)
    return state.contiguous()


def _segments_padded(seq_idx: Tensor, k: int) -> Tensor:
    """(b, k + l) monotone segment ids; the k state positions before x belong to the first document."""
    changed = (seq_idx[:, 1:] != seq_idx[:, :-1]).long()
    seg = F.pad(changed.cumsum(-1), (1, 0))
    return F.pad(seg, (k, 0))  # zeros: same id as the first document


# ---------------------------------------------------------------------------------------------------------------
# Public functionals
# ---------------------------------------------------------------------------------------------------------------


def causal_conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    activation: str | None = "silu",
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
    return_final_state: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Depthwise causal conv1d over a whole sequence.

    Shapes: b batch, d channels, l sequence length, k kernel width.

    Args:
        x: (b, d, l) inputs.
        weight: (d, k) per-channel taps, oldest input first.
        bias: (d,) or None.
        activation: "silu" (alias "swish") or None.
        initial_state: (b, d, k) the last k inputs seen before ``x`` (the decode-state layout; only the last k - 1
            columns matter), or None for zeros.
        seq_idx: (b, l) int document ids of packed sequences: no tap reads across a change of id.
        return_final_state: also return the state after ``x``.

    Returns:
        y: (b, d, l) in ``x.dtype``; final_state: (b, d, k) the last k inputs (zero-padded on the left when
        ``l < k`` and no initial_state; earlier documents zeroed when ``seq_idx`` is given), or None when not asked.
    """
    _check(x, weight, bias, initial_state, seq_idx)
    if dispatch.use_cuda_kernel("conv", x):
        return _causal_conv1d_cuda(x, weight, bias, activation=activation, initial_state=initial_state,
                                   seq_idx=seq_idx, return_final_state=return_final_state)
    return causal_conv1d_torch(x, weight, bias, activation=activation, initial_state=initial_state,
                               seq_idx=seq_idx, return_final_state=return_final_state)


def causal_conv1d_step(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None = None, *, activation: str | None = "silu"
) -> Tensor:
    """One decode step; ``conv_state`` is updated in place (shift left by one, append ``x``).

    Args:
        x: (b, d) this token's input.
        conv_state: (b, d, k) the last k inputs, oldest first.
        weight: (d, k); bias: (d,) or None; activation: "silu" or None.

    Returns:
        y: (b, d) in ``x.dtype``.
    """
    b, d = x.shape
    if conv_state.shape != (b, d, weight.shape[1]):
        raise ValueError(f"causal_conv1d_step: conv_state must be {(b, d, weight.shape[1])}, "
                         f"got {tuple(conv_state.shape)}")
    if dispatch.use_cuda_kernel("conv", x):
        update = dispatch.load("causal_conv1d").causal_conv1d_update
        return update(x, conv_state, weight, bias, activation=activation)
    return causal_conv1d_step_torch(x, conv_state, weight, bias, activation=activation)


# ---------------------------------------------------------------------------------------------------------------
# Torch
# ---------------------------------------------------------------------------------------------------------------


def causal_conv1d_torch(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    activation: str | None = "silu",
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
    return_final_state: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """The conv as k shifted multiply-adds in torch; arguments and returns as :func:`causal_conv1d`.

    The work is done channel-last, (b, l, d), where every tap is a contiguous slab and the per-channel weights
    broadcast along the fast axis; taps are accumulated in place into shifted slices of the output. A mixer's
    ``x`` is usually already a transposed view of a (b, l, d) projection; mixing that layout with a (b, d, l) padded
    copy made the elementwise ops strided and several times slower.
    The returned ``y`` is a (b, d, l) view of a channel-last tensor.
    """
    b, d, seqlen = x.shape
    k = weight.shape[1]
    xt = x.transpose(1, 2)  # (b, l, d)
    if xt.stride(-1) != 1:
        # Only the channel axis needs unit stride: a column slice of a wider projection (row stride > d) is fine.
        xt = xt.contiguous()
    prefix = (initial_state.to(x.dtype).transpose(1, 2) if initial_state is not None
              else xt.new_zeros(b, k, d))  # (b, k, d): the k inputs before x
    seg = _segments_padded(seq_idx, k) if seq_idx is not None else None  # (b, k + l), prefix = first document
    w = weight.to(x.dtype).t()  # (k, d)
    y = xt * w[k - 1]  # tap k-1 reads x itself, and never crosses a document
    if bias is not None:
        y += bias.to(x.dtype)
    # Tap k-1-s reads the input s steps back: x itself for t >= s, the prefix for t < s. Accumulating shifted
    # slices in place avoids materialising a padded (b, k + l, d) copy of the input.
    for s in range(1, k):
        tap_w = w[k - 1 - s]
        if seqlen > s:
            src = xt[:, : seqlen - s]
            if seg is not None:
                src = src * (seg[:, k : k + seqlen - s] == seg[:, k + s :]).unsqueeze(-1).to(x.dtype)
            y[:, s:].addcmul_(src, tap_w)
        m = min(s, seqlen)
        if initial_state is not None and m > 0:
            src = prefix[:, k - s : k - s + m]
            if seg is not None:
                src = src * (seg[:, k - s : k - s + m] == seg[:, k : k + m]).unsqueeze(-1).to(x.dtype)
            y[:, :m].addcmul_(src, tap_w)
    y = _activate(y, activation).transpose(1, 2)
    final = None
    if return_final_state:
        tail = xt[:, -k:] if seqlen >= k else torch.cat([prefix[:, seqlen:], xt], dim=1)  # (b, k, d)
        final = _final_state(tail.transpose(1, 2), k, seg)
    return y, final


def causal_conv1d_step_torch(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None = None, *, activation: str | None = "silu"
) -> Tensor:
    """One step in torch, updating ``conv_state`` in place; arguments and returns as :func:`causal_conv1d_step`.

    The shifted window is built once (``cat``), copied back into the state and used directly for the output:
    fewer ops than shifting column by column and then re-reading the state.
    """
    window = torch.cat([conv_state[..., 1:], x.unsqueeze(-1).to(conv_state.dtype)], dim=-1)  # (b, d, k)
    conv_state.copy_(window)
    y = (window * weight.to(window.dtype)).sum(-1)
    if bias is not None:
        y = y + bias.to(y.dtype)
    return _activate(y, activation).to(x.dtype)


def causal_conv1d_ref(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    activation: str | None = "silu",
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
    return_final_state: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """The reference: each output as a literal loop over positions. Arguments and returns as :func:`causal_conv1d`."""
    _check(x, weight, bias, initial_state, seq_idx)
    b, d, seqlen = x.shape
    k = weight.shape[1]
    xpad = _padded_input(x, k, initial_state)
    ys = []
    for t in range(seqlen):
        window = xpad[..., t + 1 : t + k + 1]  # (b, d, k): inputs t-k+1 .. t
        if seq_idx is not None:
            # Walk back from t; a tap is live only while no document boundary has been crossed.
            live = torch.ones(b, k, dtype=torch.bool, device=x.device)
            for j in range(k - 2, -1, -1):
                src = t - (k - 1 - j)
                crossed = seq_idx[:, src + 1] != seq_idx[:, src] if src >= 0 else torch.zeros_like(live[:, 0])
                live[:, j] = live[:, j + 1] & ~crossed
            window = window * live.unsqueeze(1).to(x.dtype)
        yt = (window * weight.to(x.dtype)).sum(-1)
        if bias is not None:
            yt = yt + bias.to(x.dtype)
        ys.append(yt)
    y = _activate(torch.stack(ys, dim=-1) if ys else x.new_zeros(b, d, 0), activation)
    seg = _segments_padded(seq_idx, k) if seq_idx is not None else None
    return y, (_final_state(xpad, k, seg) if return_final_state else None)


# ---------------------------------------------------------------------------------------------------------------
# CUDA: the causal_conv1d package (public API), used only through dispatch
# ---------------------------------------------------------------------------------------------------------------


def _causal_conv1d_cuda(
    x: Tensor, weight: Tensor, bias: Tensor | None, *, activation: str | None, initial_state: Tensor | None,
    seq_idx: Tensor | None, return_final_state: bool,
) -> tuple[Tensor, Tensor | None]:
    causal_conv1d_fn = dispatch.load("causal_conv1d").causal_conv1d_fn
    k = weight.shape[1]
    if initial_state is not None and seq_idx is not None:
        # The torch path defines these semantics (the state belongs to the first document); the kernel's differ.
        return causal_conv1d_torch(x, weight, bias, activation=activation, initial_state=initial_state,
                                   seq_idx=seq_idx, return_final_state=return_final_state)
    # The kernel takes (b, d, l) either contiguous or channel-last (channel stride 1, the other two strides multiples
    # of 8); seq_idx and initial states need channel-last. A mixer's x is a transposed column slice of the input
    # projection, channel-last but with the projection's width as stride: make it dense when that is misaligned.
    if initial_state is not None or seq_idx is not None or x.stride(1) == 1:
        if not (x.stride(1) == 1 and x.stride(2) % 8 == 0 and x.stride(0) % 8 == 0):
            x = x.transpose(1, 2).contiguous().transpose(1, 2)
    elif not x.is_contiguous():
        x = x.contiguous()
    init = None
    if initial_state is not None:
        # The kernel wants the k - 1 previous inputs, channel-last like x.
        init = initial_state[..., 1:].to(x.dtype).transpose(1, 2).contiguous().transpose(1, 2)
    seg32 = None
    if seq_idx is not None:
        changed = (seq_idx[:, 1:] != seq_idx[:, :-1]).to(torch.int32)
        seg32 = F.pad(changed.cumsum(-1, dtype=torch.int32), (1, 0))
    y = causal_conv1d_fn(x, weight.contiguous(), bias, seq_idx=seg32, initial_states=init, activation=activation)
    final = None
    if return_final_state:
        tail = x[..., -k:] if x.shape[-1] >= k else _padded_input(x, k, initial_state)  # only the last k matter
        final = _final_state(tail, k, _segments_padded(seq_idx, k) if seq_idx is not None else None)
    return y, final
