"""Math reward (AceReason, algorithms.md §6): 1 iff the final answer (last `\\boxed{}`, else "answer is ...",
after the reasoning) equals the row's `answer` under `zoo.eval.math` (math-verify + normalised text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.eval import math as math_verifier
from zoo.training.rewards import need


def reward(response: str, row: Mapping[str, Any]) -> float:
    """Binary math reward for one response; `row["answer"]` is the gold answer (str or number)."""
    return math_verifier.score(response, str(need(row, "answer")))
