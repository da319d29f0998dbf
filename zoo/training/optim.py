"""AdamW with decay/no-decay groups and the learning-rate schedules of the Nemotron recipes.

- Nemotron-H: cosine decay to 1% of peak after warmup (algorithms sheet 4.1).
- Nano-12B-v2-Base: warmup-stable-decay (WSD), stable 4.5e-4, floor 4.5e-6 (sheet 4.2).

The schedule is a pure function of the step (`lr_at`), not a stateful scheduler object: resuming only needs the
step counter, and a resumed run sets exactly the same learning rates as an uninterrupted one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo.training.config import OptimConfig, ScheduleConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into decayed (matrices) and undecayed (vectors, marked) groups.

    Norm weights, biases and Mamba's A_log / D / dt_bias are 1-D; the backbone may also mark any parameter with
    `_no_weight_decay = True` (the mamba convention) to opt out.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or getattr(p, "_no_weight_decay", False):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `model`'s trainable parameters; fp32 state whatever the parameter dtype of the forward pass."""
    # foreach=False keeps results bit-identical between a sharded (DTensor) and a plain run on CPU.
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             foreach=False)


def lr_at(step: int, total_steps: int, optim: OptimConfig, sched: ScheduleConfig) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total_steps`.

    Warmup is linear from lr/warmup to lr. Then:
    - constant: lr.
    - cosine: half cosine from lr to min_lr over the remaining steps.
    - wsd: lr until the last `decay_fraction` of steps, then linear to min_lr.
    """
    peak, floor = optim.lr, optim.min_lr
    w = sched.warmup_steps
    if step < w:
        return peak * (step + 1) / w
    if sched.kind == "constant":
        return peak
    rest = max(total_steps - w, 1)
    t = min((step - w) / rest, 1.0)  # progress after warmup in [0, 1]
    if sched.kind == "cosine":
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    # wsd
    decay_steps = int(round(sched.decay_fraction * total_steps))
    start = total_steps - decay_steps
    if step < start or decay_steps == 0:
        return peak
    frac = (step - start + 1) / decay_steps
    return peak + (floor - peak) * min(frac, 1.0)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


def clip_grad_norm(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm (across ranks for FSDP2 DTensors) and return the norm before clipping."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"), foreach=False)
    if hasattr(norm, "full_tensor"):  # DTensor under FSDP2: the reduced total norm
        norm = norm.full_tensor()
    return float(norm)
