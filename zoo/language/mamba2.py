"""Mamba-2 mixer (Dao & Gu, "Transformers are SSMs", arXiv 2405.21060), as used by Nemotron-H / Nano-v2.

Data flow (names as in the checkpoints, checkpoints.md 0.1):
    in_proj(x) -> [z (d_inner) | xBC (conv_dim) | dt (heads)]
    xBC -> causal depthwise conv (+bias) -> SiLU -> [x (d_inner) | B (g*n) | C (g*n)]
    dt = softplus(dt + dt_bias) (no clamp, as the CUDA kernels; `dt_clamp_min` clamps like transformers' prefill)
    y = SSD(x, dt, A=-exp(A_log), B, C) + D*x      (head i reads group i // (heads/g))
    y = RMSNorm_grouped(y * silu(z)) * norm.weight (gate before norm)
    out_proj(y)
The scan and conv live in `zoo.kernels` (chunked prefill, one-step decode, CUDA fast paths when available).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.kernels.conv import causal_conv1d, causal_conv1d_step, causal_conv1d_step_torch
from zoo.kernels.ssd import ssd_scan, ssd_step, ssd_step_torch
from zoo.language.cache import MambaState
from zoo.language.config import BlockSpec, LMConfig

if TYPE_CHECKING:
    from zoo.language.model import ForwardContext


class GatedRMSNorm(nn.Module):
    """RMSNorm over groups of d_inner / n_groups channels, applied to y * silu(z); computed in fp32."""

    def __init__(self, width: int, n_groups: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.n_groups, self.eps = n_groups, eps

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        dtype = y.dtype
        g = y.float() * F.silu(z.float())
        g = g.view(*g.shape[:-1], self.n_groups, -1)
        g = F.rms_norm(g, g.shape[-1:], eps=self.eps)  # per group, fp32; fewer ops than the written-out form
        return self.weight * g.view(*y.shape).to(dtype)


class Mamba2(nn.Module):
    """Mamba-2 mixer. Shapes: b batch, l tokens, h heads, p head_dim, g groups, n state size."""

    def __init__(self, config: LMConfig, block: BlockSpec) -> None:
        super().__init__()
        self.h, self.p, self.g, self.n = config.mamba_num_heads, config.mamba_head_dim, config.n_groups, \
            config.ssm_state_size
        self.d_inner, self.conv_dim, self.k = config.d_inner, config.conv_dim, config.conv_kernel
        self.chunk_size, self.dt_clamp_min = config.chunk_size, config.dt_clamp_min
        self.cfg = config
        self.in_proj = nn.Linear(config.hidden_size, self.d_inner + self.conv_dim + self.h, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, self.k, groups=self.conv_dim,
                                bias=config.use_conv_bias, padding=self.k - 1)
        self.dt_bias = nn.Parameter(torch.ones(self.h))
        self.A_log = nn.Parameter(torch.zeros(self.h))
        self.D = nn.Parameter(torch.ones(self.h))
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True  # marker read by the optimiser set-up
        self.norm = GatedRMSNorm(self.d_inner, self.g, config.norm_eps)
        self.out_proj = nn.Linear(self.d_inner, config.hidden_size, bias=False)

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Mamba-2 initialisation of A, D and dt_bias (dt log-uniform in [time_step_min, time_step_max])."""
        c = self.cfg
        self.A_log.copy_(torch.log(torch.arange(1, self.h + 1, dtype=torch.float32)))
        self.D.fill_(1.0)
        dt = torch.exp(torch.rand(self.h) * (math.log(c.time_step_max) - math.log(c.time_step_min))
                       + math.log(c.time_step_min)).clamp(min=c.time_step_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def new_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> MambaState:
        return MambaState(conv=torch.zeros(batch, self.conv_dim, self.k, device=device, dtype=dtype),
                          ssm=torch.zeros(batch, self.h, self.p, self.n, device=device, dtype=torch.float32))

    def neg_A(self) -> Tensor:
        """(h,) fp32 ``-exp(A_log)``. Outside training with grad off it is computed once and reused until A_log
        changes (in-place load, ``.to``): a decode step then skips two tiny ops per Mamba block."""
        a = self.A_log
        if self.training or torch.is_grad_enabled() or a.is_inference():  # inference tensors have no version counter
            return -torch.exp(a.float())
        # Keyed on the Parameter object (held, so its id cannot be reused), its version counter (bumped by every
        # in-place write: load_state_dict, optimiser steps) and its storage (`.to()` swaps `.data` in place).
        key = (a._version, a.data_ptr(), a.dtype, a.device)
        cached = self.__dict__.get("_neg_A_cache")
        if cached is None or cached[0] is not a or cached[1] != key:
            cached = (a, key, -torch.exp(a.float()))
            self.__dict__["_neg_A_cache"] = cached
        return cached[2]

    def step(self, x: Tensor, state: MambaState) -> Tensor:
        """One decode token without `forward`'s (b, l) bookkeeping (masks, branches): x (b, hidden) normed input ->
        (b, hidden) mixer output; `state` is advanced in place. Same ops as `forward`'s l == 1 branch."""
        cuda = x.is_cuda  # CUDA: the dispatching kernels (mamba_ssm / causal_conv1d when installed); CPU: torch
        return mamba_step(x, state.conv, state.ssm, self.in_proj, self.conv1d.weight.view(self.conv_dim, self.k),
                          self.conv1d.bias, self.dt_bias, self.neg_A(), self.D, self.norm.weight, self.out_proj,
                          self.step_dims(), self.norm.eps, self.dt_clamp_min,
                          conv_step=causal_conv1d_step if cuda else causal_conv1d_step_torch,
                          ssm_step=ssd_step if cuda else ssd_step_torch)

    def step_dims(self) -> tuple[int, int, int, int, int, int]:
        """(d_inner, conv_dim, heads, head_dim, groups, state) as `mamba_step` takes them."""
        return self.d_inner, self.conv_dim, self.h, self.p, self.g, self.n

    def _dt(self, dt: Tensor) -> Tensor:
        dt = F.softplus(dt.float() + self.dt_bias.float())
        return dt.clamp(min=self.dt_clamp_min) if self.dt_clamp_min is not None else dt

    def forward(self, x: Tensor, ctx: ForwardContext, state: MambaState | None = None) -> Tensor:
        """x: (b, l, hidden) -> (b, l, hidden). With `state`, continues from it and leaves the new state in it."""
        b, l, _ = x.shape
        mask = ctx.pad_mask  # (b, l, 1) or None: padded positions are zeroed so the state never sees them
        if mask is not None:
            x = x * mask
        z, xbc, dt = self.in_proj(x).split((self.d_inner, self.conv_dim, self.h), dim=-1)
        weight = self.conv1d.weight.view(self.conv_dim, self.k)
        A = self.neg_A()  # fp32: A and the cumulative sums of dt*A must not lose precision
        if state is not None and l == 1 and ctx.has_history:
            xbc = causal_conv1d_step(xbc[:, 0], state.conv, weight, self.conv1d.bias, activation="silu")
            xs, B, C = xbc.split((self.d_inner, self.g * self.n, self.g * self.n), dim=-1)
            y = ssd_step(state.ssm, xs.view(b, self.h, self.p), self._dt(dt[:, 0]), A, B.view(b, self.g, self.n),
                         C.view(b, self.g, self.n), self.D)
            y = y.reshape(b, 1, self.d_inner)
        else:
            history = state is not None and ctx.has_history
            xbc_t, conv_final = causal_conv1d(xbc.transpose(1, 2), weight, self.conv1d.bias, activation="silu",
                                              initial_state=state.conv if history else None,
                                              seq_idx=ctx.seq_idx, return_final_state=state is not None)
            xbc = xbc_t.transpose(1, 2)
            if mask is not None:
                xbc = xbc * mask
            xs, B, C = xbc.split((self.d_inner, self.g * self.n, self.g * self.n), dim=-1)
            y, final = ssd_scan(xs.reshape(b, l, self.h, self.p), self._dt(dt), A, B.reshape(b, l, self.g, self.n),
                                C.reshape(b, l, self.g, self.n), chunk_size=self.chunk_size, D=self.D,
                                initial_state=state.ssm if history else None, seq_idx=ctx.seq_idx)
            if state is not None:
                state.conv.copy_(conv_final)
                state.ssm.copy_(final)
            y = y.reshape(b, l, self.d_inner)
        return self.out_proj(self.norm(y, z))


def mamba_step(
    x: Tensor, conv_state: Tensor, ssm_state: Tensor, in_proj: Callable[[Tensor], Tensor], conv_w: Tensor,
    conv_b: Tensor | None, dt_bias: Tensor, A: Tensor, D: Tensor, norm_w: Tensor, out_proj: Callable[[Tensor], Tensor],
    dims: tuple[int, int, int, int, int, int], eps: float, dt_clamp_min: float | None, *,
    conv_step: Callable[..., Tensor] = causal_conv1d_step_torch, ssm_step: Callable[..., Tensor] = ssd_step_torch,
) -> Tensor:
    """One Mamba-2 decode token as a function of tensors and projections (what `Mamba2.step` runs, and what
    `LanguageModel.compile_decode` hands to `torch.compile` with `F.linear` on the weights: no module attributes,
    no dispatch branches inside).

    Args:
        x: (b, hidden) normed input; conv_state (b, conv_dim, k) and ssm_state (b, h, p, n) fp32 are updated in place.
        in_proj, out_proj: the block's projections; conv_w (conv_dim, k), conv_b, dt_bias (h,), A (h,) fp32 negative,
            D (h,), norm_w (d_inner,): its parameters; dims: (d_inner, conv_dim, h, p, g, n).

    Returns:
        (b, hidden) mixer output in x's dtype.
    """
    d_inner, conv_dim, h, p, g, n = dims
    b = x.shape[0]
    z, xbc, dt = in_proj(x).split((d_inner, conv_dim, h), dim=-1)
    xbc = conv_step(xbc, conv_state, conv_w, conv_b, activation="silu")
    xs, B, C = xbc.split((d_inner, g * n, g * n), dim=-1)
    dt = F.softplus(dt.float() + dt_bias.float())
    if dt_clamp_min is not None:
        dt = dt.clamp(min=dt_clamp_min)
    y = ssm_step(ssm_state, xs.view(b, h, p), dt, A, B.view(b, g, n), C.view(b, g, n), D).view(b, d_inner)
    # GatedRMSNorm, inlined: per-group RMSNorm of y * silu(z) in fp32, weight applied after the cast back
    gated = y.float() * F.silu(z.float())
    gated = F.rms_norm(gated.view(b, g, -1), (d_inner // g,), eps=eps).view(b, d_inner).to(y.dtype)
    return out_proj(norm_w * gated)
