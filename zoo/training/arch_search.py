"""Architecture search under a memory budget (Minitron for Nano-9B-v2, algorithms.md 3.3).

Enumerate child architectures of a parent over depth, hidden size, FFN width and Mamba heads; keep those whose
`zoo.memory_plan` fits a budget at a context length (Nano-v2: 19.66 GiB = A10G 22.06 GiB - 5% - 1.3 GiB for a
vision encoder, bf16 weights, 128k context, batch 1); rank the survivors by a cheap proxy measured on a pruned
model (logit MSE against the parent and next-token accuracy on calibration data); return the top k.

Candidate configs are pure arithmetic (`zoo.training.prune.pruned_config`), so the memory filter runs at full scale
(62-layer 12B parent) in milliseconds, while the proxy runs on whatever parent weights you have (a tiny model on a
laptop, the real 12B on a GPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.language.config import LMConfig
from zoo.training.prune import Importance, PruneSpec, prune, pruned_config

GIB = 1024**3
NANO_V2_BUDGET_GIB = 19.66  # A10G: 22.06 GiB - 5% framework buffer - 1.3 GiB reserved for a vision encoder


@dataclass
class Candidate:
    """One child architecture. `mse` / `accuracy` are filled by `rank_candidates` (lower MSE is better)."""

    spec: PruneSpec
    config: LMConfig
    total_gib: float
    fits: bool
    params: int
    mse: float | None = None
    accuracy: float | None = None

    def describe(self) -> str:
        s = self.spec
        return (f"blocks {self.config.num_layers:3d}  hidden {self.config.hidden_size:5d}  "
                f"ffn {self.config.intermediate_size:6d}  mamba_heads {self.config.mamba_num_heads:4d}  "
                f"params {self.params / 1e9:6.2f}B  memory {self.total_gib:6.2f} GiB  "
                f"{'fits' if self.fits else 'too big'}" + (f"  mse {self.mse:.4g}" if self.mse is not None else "")
                + (f"  acc {self.accuracy:.3f}" if self.accuracy is not None else "") + f"  drop {list(s.drop_blocks)}")


def enumerate_candidates(parent: LMConfig, *, num_blocks: Sequence[int], hidden: Sequence[int],
                         ffn: Sequence[int], mamba_heads: Sequence[int], drop_order: Sequence[int],
                         budget_gib: float, context: int, batch: int = 1, dtype: str = "bfloat16",
                         keep_too_big: bool = False) -> list[Candidate]:
    """Every combination of the axes, with its memory plan; those over budget are dropped unless `keep_too_big`.

    Args:
        parent: the parent architecture.
        num_blocks: depths to try; a depth d drops the first `num_layers - d` blocks of `drop_order`.
        hidden, ffn, mamba_heads: widths to try.
        drop_order: block indices in removal order (from `prune.block_removal_order`, or a published pattern).
        budget_gib, context, batch, dtype: the memory constraint (`zoo.memory_plan`).
    """
    from zoo.memory import memory_plan

    out = []
    for depth, h, f, mh in itertools.product(num_blocks, hidden, ffn, mamba_heads):
        n_drop = parent.num_layers - depth
        if n_drop < 0 or n_drop > len(drop_order):
            continue
        spec = PruneSpec(hidden=h, ffn=f, mamba_heads=mh, drop_blocks=tuple(sorted(drop_order[:n_drop])))
        cfg = pruned_config(parent, spec)
        plan = memory_plan(cfg, context, batch=batch, dtype=dtype)
        total = plan.total_bytes / GIB
        cand = Candidate(spec, cfg, total, total <= budget_gib, plan.params)
        if cand.fits or keep_too_big:
            out.append(cand)
    return out


@torch.no_grad()
def rank_candidates(parent: torch.nn.Module, candidates: Sequence[Candidate], batches: Sequence[torch.Tensor],
                    importance: Importance, top: int = 3) -> list[Candidate]:
    """Prune the parent to each candidate (specs must fit the parent's sizes) and rank by logit MSE to the parent
    on the calibration batches (ties broken by next-token accuracy). Returns the best `top`."""
    refs = [parent(ids).logits.float() for ids in batches]
    for c in candidates:
        child = prune(parent, c.spec, importance)
        mse, correct, total = 0.0, 0, 0
        for ids, ref in zip(batches, refs):
            logits = child(ids).logits.float()
            mse += F.mse_loss(logits, ref).item()
            correct += int((logits[:, :-1].argmax(-1) == ids[:, 1:]).sum())
            total += ids[:, 1:].numel()
        c.mse, c.accuracy = mse / len(batches), correct / max(total, 1)
    return sorted(candidates, key=lambda c: (c.mse, -(c.accuracy or 0)))[:top]


def nano_9b_v2_drop_order() -> list[int]:
    """Blocks of the 12B pattern whose removal yields exactly the published 9B pattern (the 9B pattern is a
    subsequence of the 12B's: one Mamba, three MLP and two attention blocks go)."""
    return [7, 8, 23, 24, 48, 52]
