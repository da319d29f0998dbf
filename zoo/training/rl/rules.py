"""The published data rules around GRPO: prompt loading, the epoch-wise prompt pool, curriculum stages, filters.

* `PromptPool`: deterministic epochs over a stage's prompts (reshuffled per epoch from the seed), resumable from a
  JSON state, with AceReason's epoch-wise removal of prompts that every rollout solved in the epoch just ended.
* `stage_at`: which curriculum stage a rollout step belongs to (math 8K -> 16K -> 24K, code 24K -> 32K, ...).
* `loss_mask`: response tokens that enter the loss after dropping all-equal groups and overlong filtering.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo.errors import ZooError
from zoo.training.rl.config import StageConfig

__all__ = ["PromptError", "read_prompts", "PromptPool", "stage_at", "loss_mask"]


class PromptError(ZooError):
    """A prompt file or row is unusable; the message names file:line."""


def read_prompts(path: str | Path, source: str) -> list[dict[str, Any]]:
    """Rows of a prompt JSONL; each gets `_source` and `_where` (file:line, for error messages) and an `id`.

    Raises:
        PromptError: unreadable file, invalid JSON, or a row with neither `prompt` nor `question`.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise PromptError(f"{path}: cannot read prompts: {e.strerror}") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise PromptError(f"{path}:{i}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise PromptError(f"{path}:{i}: a prompt row must be a JSON object")
        msgs = row.get("prompt")
        if msgs is None and not isinstance(row.get("question"), str):
            raise PromptError(f"{path}:{i}: row needs `prompt` (chat messages) or `question` (text)")
        if msgs is not None and (not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m
                                                                         for m in msgs)):
            raise PromptError(f"{path}:{i}: `prompt` must be a list of {{role, content}} messages")
        row["_source"], row["_where"] = source, f"{path}:{i}"
        row.setdefault("id", f"{source}:{i}")
        row["_key"] = f"{source}/{row['id']}"  # unique across sources (two sources may share a file)
        rows.append(row)
    if not rows:
        raise PromptError(f"{path}: no prompts")
    return rows


class PromptPool:
    """Epochs over a fixed prompt list; prompts every rollout solved in an epoch leave at the epoch's end.

    Args:
        rows: The stage's prompt rows, keyed by `_key` (source/id, set by `read_prompts`) or else `id`.
        seed: Shuffle seed; epoch e uses `Random(seed + e)`.
        remove_solved: AceReason's epoch-wise removal of easy prompts.
    """

    def __init__(self, rows: Sequence[dict[str, Any]], *, seed: int, remove_solved: bool = False) -> None:
        self.rows = {r.get("_key", r["id"]): r for r in rows}
        if len(self.rows) != len(rows):
            counts = Counter(r.get("_key", r["id"]) for r in rows)
            dup = sorted(k for k, c in counts.items() if c > 1)[:3]
            raise PromptError(f"prompt ids must be unique within a source; duplicates among {dup}")
        self.seed, self.remove_solved = seed, remove_solved
        self.epoch, self.pos = 0, 0
        self.removed: set[str] = set()
        self.unsolved: set[str] = set()  # prompts with a failed rollout this epoch
        self.seen: set[str] = set()
        self._order = self._shuffle()

    def _shuffle(self) -> list[str]:
        ids = sorted(i for i in self.rows if i not in self.removed)
        random.Random(self.seed + self.epoch).shuffle(ids)
        return ids

    def _end_epoch(self) -> None:
        if self.remove_solved:
            solved = self.seen - self.unsolved
            # Never empty the pool: keep the last prompts even when all are solved.
            if len(solved) < len(self.rows) - len(self.removed):
                self.removed |= solved
        self.epoch, self.pos = self.epoch + 1, 0
        self.unsolved, self.seen = set(), set()
        self._order = self._shuffle()

    def next(self, n: int) -> list[dict[str, Any]]:
        """The next `n` prompts (crossing into the next epoch when this one runs out)."""
        out = []
        while len(out) < n:
            if self.pos >= len(self._order):
                self._end_epoch()
            out.append(self.rows[self._order[self.pos]])
            self.pos += 1
        return out

    def record(self, ids: Sequence[str], solved: Sequence[bool]) -> None:
        """Note which prompts of this epoch had every rollout solved (one entry per prompt)."""
        for i, s in zip(ids, solved):
            self.seen.add(i)
            if not s:
                self.unsolved.add(i)

    @property
    def size(self) -> int:
        return len(self.rows) - len(self.removed)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self.pos, "removed": sorted(self.removed),
                "unsolved": sorted(self.unsolved), "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.removed, self.unsolved, self.seen = set(state["removed"]), set(state["unsolved"]), set(state["seen"])
        self._order = self._shuffle()


def stage_at(stages: Sequence[StageConfig], step: int) -> tuple[int, StageConfig]:
    """(index, stage) of rollout step `step` (0-based); the last stage continues past the end."""
    end = 0
    for i, s in enumerate(stages):
        end += s.steps
        if step < end:
            return i, s
    return len(stages) - 1, stages[-1]


def loss_mask(response_mask: Tensor, *, truncated: Sequence[bool], equal_group: Tensor, drop_equal: bool,
              overlong_filter: bool) -> tuple[Tensor, Tensor]:
    """The response tokens that enter the loss.

    Args:
        response_mask: (n, L) 1 at response-token targets.
        truncated: (n,) responses that ran out of budget.
        equal_group: (n,) bool, the response's group has all-equal rewards.
        drop_equal: Drop all-equal groups.
        overlong_filter: Mask truncated responses out of the loss (instead of training on their reward).

    Returns:
        mask (n, L) float and keep (n,) bool (responses with at least one token in the loss).
    """
    keep = torch.ones(response_mask.shape[0], dtype=torch.bool)
    if drop_equal:
        keep &= ~equal_group
    if overlong_filter:
        keep &= ~torch.tensor(list(truncated), dtype=torch.bool)
    mask = response_mask * keep[:, None].float()
    return mask, keep & (mask.sum(1) > 0)
