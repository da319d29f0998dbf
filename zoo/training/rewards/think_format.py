"""Llama-Nemotron format reward (algorithms.md §11): `<think>` tags iff reasoning is on.

With reasoning on the response must hold one non-empty `<think>...</think>` block before its answer; with it off
it must hold no reasoning (no tags, or the empty `<think></think>` pre-fill some formats write). Used alone
(`reward: think_format`) or added to an accuracy reward (`format_reward: true` on a prompt source), as LN-Ultra's
reasoning RL sums accuracy and format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_THINK = re.compile(r"<think>(.*?)</think>", re.S)


def score(response: str, thinking: bool) -> float:
    """1.0 iff the response's reasoning markup matches the switch.

    Args:
        response: The assistant turn (pre-fill included).
        thinking: Whether reasoning was requested.
    """
    blocks = _THINK.findall(response)
    stray = response.count("<think>") != len(blocks) or response.count("</think>") != len(blocks)
    if stray:
        return 0.0
    if thinking:
        ok = len(blocks) == 1 and blocks[0].strip() != "" and response.split("</think>", 1)[1].strip() != ""
        return 1.0 if ok else 0.0
    return 1.0 if all(b.strip() == "" for b in blocks) else 0.0


def reward(response: str, row: Mapping[str, Any]) -> float:
    """Format-only reward; `row["thinking"]` (default True) is the switch the prompt was rendered with."""
    return score(response, bool(row.get("thinking", True)))
