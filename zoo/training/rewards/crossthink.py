"""CrossThink reward (algorithms.md §8): R = R_acc AND R_format.

R_format: reasoning inside `<think>...</think>` and a `\\boxed{}` answer after it. R_acc by the row's `task` (the
RL-ready schema of `zoo curate crossthink`): `mcq` label match (`options` optional), `open` normalised short-text
match (<= 10 words), `math` math-verify equivalence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.eval import math as math_verifier
from zoo.eval import mcq
from zoo.training.rewards import RewardError, need


def reward(response: str, row: Mapping[str, Any]) -> float:
    """Binary CrossThink reward for one response."""
    task = need(row, "task")
    gold = str(need(row, "answer"))
    fmt = bool(row.get("require_think", True))
    if task == "mcq":
        return mcq.score(response, gold, row.get("options"), require_format=fmt)
    if task == "open":
        return mcq.score_open(response, gold, require_format=fmt)
    if task == "math":
        if fmt and not mcq.format_ok(response):
            return 0.0
        return math_verifier.score(response, gold)
    raise RewardError(f"field 'task' must be mcq, open or math, got {task!r}")
