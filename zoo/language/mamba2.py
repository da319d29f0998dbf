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
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.kernels.conv import causal_conv1d, causal_conv1d_step
from zoo.kernels.ssd import ssd_scan, ssd_step
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
        A = -torch.exp(self.A_log.float())  # fp32: A and the cumulative sums of dt*A must not lose precision
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
