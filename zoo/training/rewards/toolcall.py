"""Tool-call reward (Tool-N1, algorithms.md §7): r = 1 iff FormatCorrect AND ToolCallMatch.

Format: `<think>...</think>` present (a pre-filled `<think>` counts, the caller puts it back in front) and the
last tool-call block parses; match: multiset equality of (name, sorted-key JSON arguments). The markup is the
row's `chat_format` (ChatML `<tool_call>` for Tool-N1 on Qwen, `<TOOLCALL>` for Nemotron formats).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.eval import toolcall as toolcall_verifier
from zoo.training.rewards import RewardError, need


def reward(response: str, row: Mapping[str, Any]) -> float:
    """Binary Tool-N1 reward; `row["answer"]` is the gold call list (a single call dict is wrapped)."""
    gold = need(row, "answer")
    if isinstance(gold, dict):
        gold = [gold]
    if not isinstance(gold, list):
        raise RewardError(f"field 'answer' must be a list of calls for the toolcall reward, got {type(gold).__name__}")
    fmt = row.get("chat_format") or "chatml"
    return toolcall_verifier.score(response, gold, fmt=fmt, require_think=bool(row.get("require_think", True)))
