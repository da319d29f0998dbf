"""Knowledge distillation: Minitron's logit KD and Puzzle's blockwise local distillation.

* Logit KD (Minitron, Nano-9B-v2 from the 12B; algorithms.md 3.4): forward KL(p_teacher || p_student) over the
  vocabulary at temperature 1, summed over target tokens, no cross-entropy term (optional `ce_weight` mixes one in).
  Teacher and student sit side by side in one recipe; the data mix (e.g. 70% post-training + 30% pretraining) is
  the training core's blend. The loss plugs into `zoo.training.loop` (checkpoint/resume, FSDP2 for the student).
* Blockwise local distillation (Puzzle, algorithms.md 11): a replacement block (no-op, linear, narrower FFN) is
  trained on its own to reproduce the parent block's output from the parent's input activations (MSE). A linear
  replacement starts from the least-squares solution, which is exact when the parent block is linear.

Deviations: the published KD runs on billions of tokens with sequence packing at 8k-262k; the tiny profile runs a
few hundred steps on the bundled corpus. Block scoring for Puzzle's mixed-integer search is left to the caller
(`block_variant_scores` gives the replace-one-block KL that Puzzle uses as quality).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import ConfigError
from zoo.language.config import BlockSpec
from zoo.language.model import Block, LanguageModel
from zoo.training.loop import IGNORE_INDEX, LossOut

# ---------------------------------------------------------------------- logit KD


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None, *,
            temperature: float = 1.0) -> tuple[Tensor, int]:
    """Summed forward KL(teacher || student) over target positions.

    Args:
        student_logits, teacher_logits: (b, l, v).
        labels: (b, l) pre-shifted targets; positions equal to IGNORE_INDEX are not distilled. None = all positions.
        temperature: softens both distributions; the loss is scaled by T^2 (Hinton) so gradients keep their size.

    Returns:
        (loss_sum, token_count).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} != teacher {tuple(teacher_logits.shape)} "
                         "(teacher and student must share the tokenizer)")
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_token = (t.exp() * (t - s)).sum(-1)  # (b, l)
    if labels is not None:
        keep = labels != IGNORE_INDEX
        per_token = per_token[keep]
        count = int(keep.sum())
    else:
        count = per_token.numel()
    return per_token.sum() * temperature**2, count


def make_kd_loss_fn(teacher: nn.Module, *, temperature: float = 1.0, ce_weight: float = 0.0):
    """A `loop.LossFn` distilling `teacher` (frozen, eval mode) into the trained model."""
    teacher.eval().requires_grad_(False)

    def loss_fn(model: nn.Module, batch: dict[str, Tensor]) -> LossOut:
        kw = {"document_ids": batch["document_ids"]} if "document_ids" in batch else {}
        with torch.no_grad():
            t_logits = teacher(batch["input_ids"], **kw).logits
        s_logits = model(batch["input_ids"], **kw).logits
        labels = batch.get("labels")
        kl, count = kd_loss(s_logits, t_logits, labels, temperature=temperature)
        metrics = {"kl": kl.detach()}
        loss = kl
        if ce_weight:
            ce = F.cross_entropy(s_logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                                 reduction="sum")
            loss = (1 - ce_weight) * kl + ce_weight * ce
            metrics["ce"] = ce.detach()
        return LossOut(loss, count, metrics)

    return loss_fn


# ---------------------------------------------------------------------- Puzzle block variants

Variant = Literal["noop", "linear"] | tuple[Literal["ffn"], int]


@torch.no_grad()
def replace_block(model: LanguageModel, index: int, variant: Variant) -> LanguageModel:
    """A copy of `model` with block `index` replaced by a Puzzle variant.

    Variants: "noop" (the block vanishes), "linear" (a hidden x hidden Linear, zero-initialised: the block starts as
    the identity), ("ffn", width) (an MLP block narrowed to `width` neurons, keeping its first `width` units; prune
    by importance first to keep the best ones).
    """
    child = copy.deepcopy(model)
    cfg = child.config
    if not 0 <= index < cfg.num_layers:
        raise ConfigError(f"block index {index} out of range ({cfg.num_layers} blocks)")
    spec = cfg.blocks[index]
    blocks = list(cfg.blocks)
    if variant == "noop":
        del blocks[index]
        del child.blocks[index]
        child.config = replace(cfg, blocks=tuple(blocks))
        return child
    if variant == "linear":
        blocks[index] = BlockSpec("linear", layer=spec.layer, role=spec.role)
    elif isinstance(variant, tuple) and variant[0] == "ffn":
        if spec.mixer != "mlp":
            raise ConfigError(f"block {index} is {spec.mixer!r}, not an MLP: cannot narrow its FFN")
        blocks[index] = BlockSpec("mlp", intermediate_size=int(variant[1]), layer=spec.layer, role=spec.role)
    else:
        raise ConfigError(f"unknown block variant {variant!r}")
    new_cfg = replace(cfg, blocks=tuple(blocks))
    old = child.blocks[index]
    new = Block(new_cfg, index).to(child.embed.weight)
    new.norm.weight.copy_(old.norm.weight)
    if variant == "linear":
        new.mixer.linear.weight.zero_()  # starts as the identity block; blockwise_distill fits it
    else:
        width = new.mixer.intermediate_size
        if old.mixer.activation == "relu2":
            new.mixer.up_proj.weight.copy_(old.mixer.up_proj.weight[:width])
        else:
            gate, up = old.mixer.gate_up.weight.chunk(2)
            new.mixer.gate_up.weight.copy_(torch.cat([gate[:width], up[:width]]))
        new.mixer.down_proj.weight.copy_(old.mixer.down_proj.weight[:, :width])
    child.blocks[index] = new
    child.config = new_cfg
    return child


@torch.no_grad()
def _block_io(model: LanguageModel, index: int, batches: Iterable[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """Inputs and outputs of block `index` of `model` on the calibration batches."""
    records: list[tuple[Tensor, Tensor]] = []
    hook = model.blocks[index].register_forward_hook(lambda m, inp, out: records.append((inp[0].detach(),
                                                                                          out.detach())))
    try:
        for ids in batches:
            model(ids)
    finally:
        hook.remove()
    return records


def blockwise_distill(parent: LanguageModel, child: LanguageModel, parent_index: int, child_index: int,
                      batches: Sequence[Tensor], *, steps: int = 100, lr: float = 1e-3,
                      least_squares_init: bool = True) -> list[float]:
    """Blockwise local distillation: train child block `child_index` to map the parent block's inputs to the parent
    block's outputs (MSE), leaving the rest of the child untouched. Returns the loss per step.

    For a linear replacement block the least-squares fit of (norm(x) -> out - x) is computed first; when the parent
    block is itself linear this is exact and no steps are needed.
    """
    io = _block_io(parent, parent_index, batches)
    block = child.blocks[child_index]
    ctx = _plain_ctx(child)
    if least_squares_init and block.kind == "linear":
        with torch.no_grad():
            xs = torch.cat([block.norm(x).flatten(0, 1).float() for x, _ in io])
            ys = torch.cat([(y - x).flatten(0, 1).float() for x, y in io])
            sol = torch.linalg.lstsq(xs, ys).solution  # (hidden, hidden): xs @ sol ~= ys
            block.mixer.linear.weight.copy_(sol.T.to(block.mixer.linear.weight.dtype))
    params = [p for p in block.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for step in range(steps):
        x, y = io[step % len(io)]
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(block(x, ctx(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _plain_ctx(model: LanguageModel):
    """A forward context for running one block alone on full (unpadded, uncached) sequences."""

    def make(x: Tensor):
        return model._context(x.shape[0], x.shape[1], None, None, None, x.dtype, x.device)

    return make


@torch.no_grad()
def block_variant_scores(model: LanguageModel, variants: dict[int, Sequence[Variant]], batches: Sequence[Tensor]
                         ) -> dict[tuple[int, Any], float]:
    """Puzzle's replace-one-block quality: mean KL(parent || child) per token when only one block is replaced."""
    ref = [model(ids).logits for ids in batches]
    out: dict[tuple[int, Any], float] = {}
    for index, vs in variants.items():
        for v in vs:
            child = replace_block(model, index, v)
            total, n = 0.0, 0
            for ids, r in zip(batches, ref):
                kl, c = kd_loss(child(ids).logits, r)
                total, n = total + kl.item(), n + c
            out[(index, v if isinstance(v, str) else tuple(v))] = total / max(n, 1)
    return out


@dataclass
class KDConfig:
    """Distillation loss settings.

    Attributes:
        temperature: softmax temperature for both models (Minitron: 1.0 best).
        ce_weight: share of next-token cross-entropy mixed in (Minitron: 0, logit-only KD).
    """

    temperature: float = 1.0
    ce_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("kd.temperature must be > 0")
        if not 0.0 <= self.ce_weight <= 1.0:
            raise ValueError("kd.ce_weight must be in [0, 1]")


@dataclass
class PruneConfig:
    """How the student is cut from the teacher (PruneSpec fields plus the calibration set size).

    Attributes:
        hidden, ffn, mamba_heads: target widths (null keeps the teacher's).
        num_blocks: target block count (depth pruning by iterative logit-MSE removal); null keeps all.
        drop_blocks: explicit block indices to drop instead of searching (e.g. to reproduce a published pattern).
        calibration_samples: forward-only importance estimation set size (Minitron: 1024).
        rescale_norms: compensate RMSNorm scales for removed channels (see zoo.training.prune).
    """

    hidden: int | None = None
    ffn: int | None = None
    mamba_heads: int | None = None
    num_blocks: int | None = None
    drop_blocks: list[int] = field(default_factory=list)
    calibration_samples: int = 1024
    rescale_norms: bool = True
