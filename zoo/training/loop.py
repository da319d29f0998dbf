"""The shared training loop: plain functions that every recipe (pretrain, SFT, distillation, GRPO...) calls.

There is no Trainer class. A recipe owns its model, optimizer and batches and composes:

    loss_fn(model, micro_batch) -> LossOut      the only recipe-specific piece (see `causal_lm_loss`)
    train_step(...)                              accumulate micro-batches, normalise, clip, step -> metrics
    fit(...)                                     resume, loop with schedule, metrics JSONL, progress, checkpoints

Normalisation: a loss function returns a *sum* over its targets and the target count. `train_step` backpropagates
the sums and divides the gradients by the global count (all ranks, all micro-batches) at the end, so the update
is the same whatever the split into micro-batches and ranks: one process with 2 micro-batches and 2 FSDP ranks
with 1 each produce the same losses.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from zoo.training import checkpoint as ckpt
from zoo.training.config import OptimConfig, ScheduleConfig, TrainConfig
from zoo.training.data import IGNORE_INDEX, shard_batch, split_micro
from zoo.training.optim import clip_grad_norm, lr_at, set_lr

Batch = dict[str, torch.Tensor]


@dataclass
class LossOut:
    """What a loss function returns for one micro-batch.

    Attributes:
        loss_sum: Scalar, the loss summed over this micro-batch's targets (differentiable).
        count: Number of targets summed (tokens, sequences...): the normaliser.
        metrics: Extra sums to report, divided by the global count like the loss (e.g. {"kl": tensor}).
    """

    loss_sum: torch.Tensor
    count: int | torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class LossFn(Protocol):
    def __call__(self, model: nn.Module, batch: Batch) -> LossOut: ...


class Stateful(Protocol):
    """A batch source that can resume: `PackedBatches`, or anything with these two methods."""

    def __next__(self) -> Batch: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ----------------------------------------------------------------------------------------------------------------
# Loss


def causal_lm_loss(model: nn.Module, batch: Batch) -> LossOut:
    """Next-token cross-entropy on pre-shifted `labels` (IGNORE_INDEX = not learned).

    Batch keys: input_ids (b, s), labels (b, s), document_ids (b, s) optional. Packed rows pass `document_ids`
    so attention is block-diagonal and Mamba state resets per sample; trailing padding is its own document.
    """
    kwargs = {}
    if "document_ids" in batch:
        kwargs["document_ids"] = batch["document_ids"]
    out = model(batch["input_ids"], **kwargs)
    logits = out.logits if hasattr(out, "logits") else out
    labels = batch["labels"]
    # fp32 logits for the softmax: bf16 cross-entropy loses ~2 digits on a 2k+ vocabulary.
    loss_sum = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return LossOut(loss_sum, int((labels != IGNORE_INDEX).sum()))


# ----------------------------------------------------------------------------------------------------------------
# One optimizer step


def _world() -> tuple[int, int]:
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t


def autocast_ctx(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """bf16 autocast (fp32 master weights) or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: nn.Module, micro_batches: list[Batch], optimizer: torch.optim.Optimizer, *, loss_fn: LossFn,
               lr: float, grad_clip: float = 1.0, precision: str = "fp32") -> dict[str, float]:
    """One optimizer step over this rank's micro-batches.

    Args:
        model: Plain or FSDP2-sharded module.
        micro_batches: This rank's share of the global batch, already split for accumulation.
        optimizer: Its optimizer; `lr` is written into every group first.
        loss_fn: Returns summed loss and count per micro-batch.
        lr: Learning rate of this step (from `optim.lr_at`).
        grad_clip: Global grad-norm clip, 0 = off.
        precision: "bf16" autocast or "fp32".

    Returns:
        {"loss", "grad_norm", "lr", "count"} plus the loss function's metrics, averaged over the global count.
    """
    _, world = _world()
    device = next(model.parameters()).device
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    loss_total = torch.zeros((), dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    metric_sums: dict[str, torch.Tensor] = {}
    for mb in micro_batches:
        mb = {k: v.to(device) for k, v in mb.items()}
        with autocast_ctx(precision, device):
            out = loss_fn(model, mb)
        out.loss_sum.backward()
        loss_total += out.loss_sum.detach().double().cpu()
        count += float(out.count)
        for k, v in out.metrics.items():
            metric_sums[k] = metric_sums.get(k, torch.zeros((), dtype=torch.float64)) + v.detach().double().cpu()
    stats = torch.stack([loss_total, count, *metric_sums.values()])
    stats = _all_reduce(stats)
    global_count = max(float(stats[1]), 1.0)
    # Gradients hold sum-losses (FSDP2 additionally averages them over ranks): rescale to the global mean.
    scale = world / global_count
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(scale)
    grad_norm = clip_grad_norm(model, grad_clip)
    optimizer.step()
    res = {"loss": float(stats[0]) / global_count, "grad_norm": grad_norm, "lr": lr, "count": float(stats[1])}
    for i, k in enumerate(metric_sums):
        res[k] = float(stats[2 + i]) / global_count
    return res


# ----------------------------------------------------------------------------------------------------------------
# Metrics


class MetricsLog:
    """Append-only JSONL metrics (rank 0 writes); one object per logged step."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        if self.path is not None and _world()[0] == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None or _world()[0] != 0:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics file; for a resumed run the last record of each step wins."""
    by_step: dict[int, dict] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            by_step[r["step"]] = r
    return [by_step[k] for k in sorted(by_step)]


# ----------------------------------------------------------------------------------------------------------------
# The loop


@dataclass
class FitResult:
    """What `fit` returns: per-step metrics of this invocation and where the run lives."""

    history: list[dict[str, Any]]
    out_dir: Path
    last_checkpoint: Path | None
    tokens: int


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Stateful | Iterator[Batch], *,
        loss_fn: LossFn = causal_lm_loss, train: TrainConfig, optim: OptimConfig, schedule: ScheduleConfig,
        resume: bool = False, stop_after: int | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
    """Train `model` for `train.steps` optimizer steps, checkpointing and logging as configured.

    Each global batch from `batches` holds `micro_batch_size * grad_accum * world` rows; this rank takes its slice
    and splits it into `grad_accum` micro-batches.

    Args:
        model: Plain or FSDP2-sharded model, in train mode.
        optimizer: From `optim.build_optimizer`.
        batches: Global batches; when it has state_dict/load_state_dict it is checkpointed and resumed.
        loss_fn: Per micro-batch summed loss (default next-token CE).
        train: Steps, batch shape, precision, out_dir, logging and checkpoint cadence.
        optim: Peak/min LR and grad clip.
        schedule: LR shape (`optim.lr_at`).
        resume: Continue from the newest checkpoint in `train.out_dir` (a fresh start when there is none).
        stop_after: Stop (after checkpointing) once this many steps are done: simulates a kill in tests.
        on_step: Called with (step, metrics) after every step (evaluation hooks, early stopping via exception).

    Returns:
        FitResult with this invocation's metrics history.
    """
    rank, world = _world()
    out_dir = Path(train.out_dir)
    step, tokens = 0, 0
    if resume and (last := ckpt.latest_checkpoint(out_dir)) is not None:
        state = ckpt.load_checkpoint(last, model=model, optimizer=optimizer)
        step = int(state["step"])
        tokens = int(state["extra"].get("tokens", 0))
        if hasattr(batches, "load_state_dict") and state.get("data") is not None:
            batches.load_state_dict(state["data"])
        if rank == 0:
            print(f"resumed from {last} at step {step}", file=sys.stderr)
    log = MetricsLog(out_dir / "metrics.jsonl")
    history: list[dict[str, Any]] = []
    last_path = None
    bar = _progress(train.steps, step, rank)
    t0 = time.perf_counter()
    model.train()
    while step < train.steps:
        batch = next(batches)
        local = shard_batch(batch, rank, world)
        micro = split_micro(local, train.micro_batch_size)
        lr = lr_at(step, train.steps, optim, schedule)
        m = train_step(model, micro, optimizer, loss_fn=loss_fn, lr=lr, grad_clip=optim.grad_clip,
                       precision=train.precision)
        step += 1
        tokens += int(batch["input_ids"].numel())
        m.update(step=step, tokens=tokens, elapsed_s=round(time.perf_counter() - t0, 3))
        history.append(m)
        if step % train.log_every == 0 or step == train.steps or step == 1:
            log.write(m)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{lr:.2e}")
        if on_step is not None:
            on_step(step, m)
        stopping = stop_after is not None and step >= stop_after
        if step == train.steps or stopping or (train.ckpt_every and step % train.ckpt_every == 0):
            last_path = ckpt.save_checkpoint(out_dir, step, model=model, optimizer=optimizer,
                                             data_state=batches.state_dict() if hasattr(batches, "state_dict") else None,
                                             extra={"tokens": tokens}, keep=train.keep_checkpoints)
        if stopping:
            break
    if bar is not None:
        bar.close()
    return FitResult(history, out_dir, last_path, tokens)


def _progress(total: int, initial: int, rank: int):
    if rank != 0:
        return None
    from tqdm.auto import tqdm

    # disable=None: shown on a terminal, silent in logs and CI.
    return tqdm(total=total, initial=initial, disable=None, dynamic_ncols=True, desc="train")
