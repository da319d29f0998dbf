"""Minitron-style structured pruning for every block type of the shared backbone.

How Nemotron-Nano-9B-v2 was made from the 12B (algorithms.md section 3; Minitron arXiv 2407.14679 / 2408.11796):

1. Importance from forward passes only, over a calibration set (default 1024 samples):
   * FFN neurons: activation of neuron i (after the nonlinearity), aggregated mean over the sequence, then L2 over
     the batch (the best aggregation in Minitron's ablations).
   * Embedding (hidden) channels: the outputs of every RMSNorm, same aggregation, summed over norms.
   * Attention heads: per-head output (before o_proj), norm over head_dim, same aggregation.
   * Mamba heads: per-head output (before out_proj), same aggregation, ranked *within each group* so pruning keeps
     the group structure (group-aware SSM pruning).
   * Depth: iterative block removal scored by the MSE between the pruned and the full model's logits.
2. Pruning slices the weights of every block kind to a valid smaller `LMConfig`: Mamba in_proj segments
   [z | x | B | C | dt], conv1d channels, the grouped norm, A_log / D / dt_bias; embedding, lm_head and every norm
   when hidden channels go.

Deviation from the papers (documented on purpose): RMSNorm divides by the channel count, so removing channels
changes every norm's scale even when the removed channels are all zero. We multiply the affected norm weights by
sqrt(old_width / new_width) (`rescale_norms=True`), which makes pruning all-zero units exactly lossless and is a
better starting point for distillation otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import ConfigError
from zoo.language.config import BlockSpec, LMConfig
from zoo.language.mamba2 import Mamba2
from zoo.language.model import LanguageModel

# ---------------------------------------------------------------------- importance


@dataclass
class Importance:
    """Accumulated importance scores (higher = more important).

    hidden: (hidden,); ffn[i]: (width_i,) per mlp block index; attn_heads[i]: (heads,); mamba_heads[i]: (heads,).
    """

    hidden: Tensor
    ffn: dict[int, Tensor] = field(default_factory=dict)
    attn_heads: dict[int, Tensor] = field(default_factory=dict)
    mamba_heads: dict[int, Tensor] = field(default_factory=dict)
    samples: int = 0


def _seq_mean_sq(act: Tensor, mask: Tensor | None) -> Tensor:
    """act (b, l, c) -> sum over batch of (mean over valid positions)^2, shape (c,): the L2-over-batch accumulator."""
    if mask is None:
        m = act.float().mean(1)
    else:
        w = mask.float()[..., None]
        m = (act.float() * w).sum(1) / w.sum(1).clamp(min=1)
    return m.pow(2).sum(0)


@torch.no_grad()
def estimate_importance(model: LanguageModel, batches: Iterable[dict[str, Tensor] | Tensor]) -> Importance:
    """Run calibration batches through `model` and collect Minitron importance scores for every prunable axis.

    Args:
        model: any LanguageModel.
        batches: tensors (b, l) of token ids, or dicts with `input_ids` and optional `attention_mask`.
    """
    cfg = model.config
    acc: dict[str, Tensor] = {}
    mask_box: list[Tensor | None] = [None]

    def add(key: str, value: Tensor) -> None:
        acc[key] = acc[key] + value if key in acc else value

    hooks = []
    for i, blk in enumerate(model.blocks):
        hooks.append(blk.norm.register_forward_hook(
            lambda m, inp, out: add("hidden", _seq_mean_sq(out, mask_box[0]))))
        mixer = blk.mixer
        if blk.kind == "mlp":
            target = mixer.down_proj  # its input is the post-activation neuron output
            hooks.append(target.register_forward_pre_hook(
                lambda m, inp, i=i: add(f"ffn.{i}", _seq_mean_sq(inp[0], mask_box[0]))))
        elif blk.kind == "attention":
            h, d = mixer.num_heads, mixer.head_dim
            hooks.append(mixer.o_proj.register_forward_pre_hook(
                lambda m, inp, i=i, h=h, d=d: add(f"attn.{i}", _seq_mean_sq(
                    inp[0].unflatten(-1, (h, d)).norm(dim=-1), mask_box[0]))))
        elif blk.kind == "mamba":
            h, p = mixer.h, mixer.p
            hooks.append(mixer.out_proj.register_forward_pre_hook(
                lambda m, inp, i=i, h=h, p=p: add(f"mamba.{i}", _seq_mean_sq(
                    inp[0].unflatten(-1, (h, p)).norm(dim=-1), mask_box[0]))))
    hooks.append(model.norm_f.register_forward_hook(lambda m, inp, out: add("hidden", _seq_mean_sq(out, mask_box[0]))))
    samples = 0
    try:
        for batch in batches:
            ids = batch if isinstance(batch, Tensor) else batch["input_ids"]
            mask = None if isinstance(batch, Tensor) else batch.get("attention_mask")
            mask_box[0] = mask
            model(ids, attention_mask=mask)
            samples += ids.shape[0]
    finally:
        for hk in hooks:
            hk.remove()
    if samples == 0:
        raise ConfigError("estimate_importance: the calibration set is empty")
    imp = Importance(hidden=acc["hidden"].sqrt(), samples=samples)
    for key, v in acc.items():
        kind, _, idx = key.partition(".")
        if kind == "ffn":
            imp.ffn[int(idx)] = v.sqrt()
        elif kind == "attn":
            imp.attn_heads[int(idx)] = v.sqrt()
        elif kind == "mamba":
            imp.mamba_heads[int(idx)] = v.sqrt()
    del cfg
    return imp


def top_k(scores: Tensor, k: int) -> Tensor:
    """Indices of the k highest scores, in ascending index order (keeps the original unit order)."""
    if not 0 < k <= scores.numel():
        raise ConfigError(f"cannot keep {k} of {scores.numel()} units")
    return scores.topk(k).indices.sort().values


def group_aware_top_k(scores: Tensor, n_groups: int, k: int) -> Tensor:
    """Keep k heads, k/n_groups from each contiguous group of heads (head i belongs to group i // (h/g))."""
    h = scores.numel()
    if k % n_groups or h % n_groups:
        raise ConfigError(f"Mamba heads must be pruned evenly per group: keep {k} of {h} heads in {n_groups} groups")
    per, keep_per = h // n_groups, k // n_groups
    parts = [top_k(scores[g * per:(g + 1) * per], keep_per) + g * per for g in range(n_groups)]
    return torch.cat(parts)


# ---------------------------------------------------------------------- depth


@torch.no_grad()
def block_removal_order(model: LanguageModel, batches: Sequence[Tensor], n_remove: int,
                        candidates: Sequence[int] | None = None) -> list[int]:
    """Iteratively pick `n_remove` blocks to drop: each round removes the block whose removal changes the logits
    least (MSE against the full model on the calibration batches). Returns block indices in removal order."""
    full = [model(ids).logits.float() for ids in batches]
    removed: list[int] = []
    pool = list(candidates if candidates is not None else range(len(model.blocks)))
    original = model.blocks
    try:
        for _ in range(n_remove):
            best, best_err = None, math.inf
            for c in pool:
                skip = set(removed) | {c}
                model.blocks = nn.ModuleList(b for j, b in enumerate(original) if j not in skip)
                err = sum(F.mse_loss(model(ids).logits.float(), ref).item() for ids, ref in zip(batches, full))
                if err < best_err:
                    best, best_err = c, err
            removed.append(best)
            pool.remove(best)
    finally:
        model.blocks = original
    return removed


# ---------------------------------------------------------------------- config arithmetic


@dataclass(frozen=True)
class PruneSpec:
    """Target sizes. None keeps an axis as it is.

    Attributes:
        hidden: embedding channels to keep.
        ffn: FFN neurons per MLP block to keep (every MLP block gets this width).
        mamba_heads: Mamba heads per block to keep (a multiple of n_groups).
        attn_heads_per_kv: query heads kept per kv head (GQA groups keep their structure).
        drop_blocks: block indices to remove (depth pruning).
    """

    hidden: int | None = None
    ffn: int | None = None
    mamba_heads: int | None = None
    attn_heads_per_kv: int | None = None
    drop_blocks: tuple[int, ...] = ()


def pruned_config(cfg: LMConfig, spec: PruneSpec) -> LMConfig:
    """The LMConfig a prune with `spec` produces (no weights involved: usable at full scale for search)."""
    drop = set(spec.drop_blocks)
    bad = [i for i in drop if not 0 <= i < cfg.num_layers]
    if bad:
        raise ConfigError(f"drop_blocks {bad} out of range for {cfg.num_layers} blocks")
    blocks = []
    for i, b in enumerate(cfg.blocks):
        if i in drop:
            continue
        if b.mixer == "mlp" and spec.ffn is not None:
            b = replace(b, intermediate_size=spec.ffn if b.intermediate_size is not None else None)
        blocks.append(b)
    if not blocks:
        raise ConfigError("pruning would remove every block")
    kw: dict = {"blocks": tuple(blocks)}
    if spec.hidden is not None:
        if spec.hidden > cfg.hidden_size:
            raise ConfigError(f"hidden {spec.hidden} exceeds the parent's {cfg.hidden_size}")
        kw["hidden_size"] = spec.hidden
    if spec.ffn is not None:
        kw["intermediate_size"] = spec.ffn
    if spec.mamba_heads is not None:
        kw["mamba_num_heads"] = spec.mamba_heads
    if spec.attn_heads_per_kv is not None:
        kw["num_attention_heads"] = spec.attn_heads_per_kv * cfg.num_key_value_heads
    return replace(cfg, **kw)


# ---------------------------------------------------------------------- weight slicing


def _take(w: Tensor, dim: int, idx: Tensor | None) -> Tensor:
    return w if idx is None else w.index_select(dim, idx.to(w.device))


def _mamba_keep_index(m: Mamba2, heads: Tensor) -> dict[str, Tensor]:
    """Row indices into in_proj / conv channels for the kept Mamba heads (segments [z | x | B | C | dt])."""
    p, d_inner, gn = m.p, m.d_inner, m.g * m.n
    within = (heads[:, None] * p + torch.arange(p)).flatten()  # channels of the kept heads inside d_inner
    z = within
    x = d_inner + within
    bc = d_inner + d_inner + torch.arange(2 * gn)  # B and C: every group kept
    dt = 2 * d_inner + 2 * gn + heads
    conv = torch.cat([within, d_inner + torch.arange(2 * gn)])
    return {"in_proj": torch.cat([z, x, bc, dt]), "conv": conv, "inner": within}


@torch.no_grad()
def prune(model: LanguageModel, spec: PruneSpec, importance: Importance | None = None, *,
          rescale_norms: bool = True, model_cls: type | None = None) -> LanguageModel:
    """Return a new, smaller model with the units `importance` ranks highest (all-ones importance keeps the first
    units). The parent is untouched.

    Args:
        model: parent model (any family).
        spec: target sizes (see PruneSpec).
        importance: from `estimate_importance` on calibration data.
        rescale_norms: compensate RMSNorm scales for removed channels (module docstring).
        model_cls: class of the child (default: the parent's class, built from the child config).
    """
    cfg = model.config
    child_cfg = pruned_config(cfg, spec)
    imp = importance
    hid_idx = None
    if spec.hidden is not None and spec.hidden != cfg.hidden_size:
        scores = imp.hidden if imp is not None else -torch.arange(cfg.hidden_size, dtype=torch.float)
        hid_idx = top_k(scores, spec.hidden)
    cls = model_cls or type(model)
    child = cls.from_hf_config(child_cfg.to_hf()) if hasattr(cls, "from_hf_config") else cls(child_cfg)
    child.to(device=model.embed.weight.device, dtype=model.embed.weight.dtype)
    if hasattr(child, "hf_config") and hasattr(model, "hf_config"):
        child.hf_config = {**model.hf_config, **child_cfg.to_hf()}
    hid_scale = math.sqrt(cfg.hidden_size / child_cfg.hidden_size) if rescale_norms else 1.0

    child.embed.weight.copy_(_take(model.embed.weight, 1, hid_idx))
    child.norm_f.weight.copy_(_take(model.norm_f.weight, 0, hid_idx) * hid_scale)
    if not child_cfg.tie_word_embeddings:
        child.lm_head.weight.copy_(_take(model.lm_head.weight, 1, hid_idx))
    kept_blocks = [i for i in range(cfg.num_layers) if i not in set(spec.drop_blocks)]
    for j, i in enumerate(kept_blocks):
        src, dst = model.blocks[i], child.blocks[j]
        dst.norm.weight.copy_(_take(src.norm.weight, 0, hid_idx) * hid_scale)
        sm, dm = src.mixer, dst.mixer
        if src.kind == "mlp":
            width = dm.intermediate_size
            n_idx = None
            if width != sm.intermediate_size:
                scores = imp.ffn[i] if imp is not None else -torch.arange(sm.intermediate_size, dtype=torch.float)
                n_idx = top_k(scores, width)
            if sm.activation == "relu2":
                dm.up_proj.weight.copy_(_take(_take(sm.up_proj.weight, 0, n_idx), 1, hid_idx))
            else:
                gate, up = sm.gate_up.weight.chunk(2, dim=0)
                dm.gate_up.weight.copy_(torch.cat([_take(_take(gate, 0, n_idx), 1, hid_idx),
                                                   _take(_take(up, 0, n_idx), 1, hid_idx)]))
            dm.down_proj.weight.copy_(_take(_take(sm.down_proj.weight, 1, n_idx), 0, hid_idx))
        elif src.kind == "linear":
            dm.linear.weight.copy_(_take(_take(sm.linear.weight, 0, hid_idx), 1, hid_idx))
        elif src.kind == "attention":
            _prune_attention(sm, dm, hid_idx, imp.attn_heads.get(i) if imp is not None else None)
        elif src.kind == "mamba":
            _prune_mamba(sm, dm, hid_idx, imp.mamba_heads.get(i) if imp is not None else None, rescale_norms)
    child.eval()
    return child


def _prune_attention(sm, dm, hid_idx: Tensor | None, scores: Tensor | None) -> None:
    h, g, d = sm.num_heads, sm.num_kv_heads, sm.head_dim
    new_h = dm.num_heads
    head_idx = None
    if new_h != h:
        per_kv, new_per_kv = h // g, new_h // g
        s = scores if scores is not None else -torch.arange(h, dtype=torch.float)
        head_idx = torch.cat([top_k(s[k * per_kv:(k + 1) * per_kv], new_per_kv) + k * per_kv for k in range(g)])
    q, k, v = sm.qkv.weight.split(sm.split_sizes, dim=0)
    q_rows = None if head_idx is None else (head_idx[:, None] * d + torch.arange(d)).flatten()
    w = torch.cat([_take(q, 0, q_rows), k, v])
    dm.qkv.weight.copy_(_take(w, 1, hid_idx))
    if sm.qkv.bias is not None:
        qb, kb, vb = sm.qkv.bias.split(sm.split_sizes)
        dm.qkv.bias.copy_(torch.cat([_take(qb, 0, q_rows), kb, vb]))
    dm.o_proj.weight.copy_(_take(_take(sm.o_proj.weight, 1, q_rows), 0, hid_idx))


def _prune_mamba(sm: Mamba2, dm: Mamba2, hid_idx: Tensor | None, scores: Tensor | None, rescale: bool) -> None:
    heads = None
    if dm.h != sm.h:
        s = scores if scores is not None else -torch.arange(sm.h, dtype=torch.float)
        heads = group_aware_top_k(s, sm.g, dm.h)
    if heads is None:
        idx = {"in_proj": None, "conv": None, "inner": None}
        head_sel = None
    else:
        idx = _mamba_keep_index(sm, heads)
        head_sel = heads
    dm.in_proj.weight.copy_(_take(_take(sm.in_proj.weight, 0, idx["in_proj"]), 1, hid_idx))
    dm.conv1d.weight.copy_(_take(sm.conv1d.weight, 0, idx["conv"]))
    if sm.conv1d.bias is not None:
        dm.conv1d.bias.copy_(_take(sm.conv1d.bias, 0, idx["conv"]))
    for name in ("A_log", "D", "dt_bias"):
        getattr(dm, name).copy_(_take(getattr(sm, name), 0, head_sel))
    scale = math.sqrt(sm.d_inner / dm.d_inner) if rescale else 1.0  # group width shrinks in the gated norm
    dm.norm.weight.copy_(_take(sm.norm.weight, 0, idx["inner"]) * scale)
    dm.out_proj.weight.copy_(_take(_take(sm.out_proj.weight, 1, idx["inner"]), 0, hid_idx))


def pruned_block_specs(cfg: LMConfig, drop: Iterable[int]) -> tuple[BlockSpec, ...]:
    """Blocks left after dropping `drop` (helper for search reports)."""
    d = set(drop)
    return tuple(b for i, b in enumerate(cfg.blocks) if i not in d)
