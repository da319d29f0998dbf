"""Tool-call reward: Tool-N1's binary rule, for ChatML ``<tool_call>`` and Nemotron ``<TOOLCALL>`` markup.

Tool-N1 (algorithms.md §7, arXiv 2505.00024): r = 1 iff FormatCorrect and ToolCallMatch, else 0.
- Only the text after the last assistant-turn marker counts (a full transcript may hold example calls in the
  system prompt).
- Format: ``<think>`` and ``</think>`` both present (unless the prompt already opened the reasoning), and the
  **last** call block parses as JSON: a list of calls, or a single call object (wrapped into a list). Every call
  is an object with both ``name`` and ``arguments`` keys.
- Match: multiset equality of ``(name, canonical JSON of arguments with sorted keys)``: call order and key order
  do not matter, values and types must match exactly, duplicates count. An empty list ``[]`` matches an empty gold
  list ("no function applies"); no block at all, or a block that does not parse, scores 0.

The Nemotron formats (nemotron-v2, llama-nemotron, llama-nemotron-v1.5; checkpoints.md §1.4, §2.3) write the same
JSON list inside ``<TOOLCALL>...</TOOLCALL>``; the same rule applies to them. This parser is deliberately
stricter than `zoo.toolcalls` (which serves chat and accepts every block and lenient shapes): a reward must
judge exactly the last block the model committed to.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MARKUP", "assistant_region", "parse_last_block", "canonical", "calls_match", "format_ok", "score"]

# (open tag, close tag, assistant-turn marker) per chat format.
MARKUP: dict[str, tuple[str, str, str]] = {
    "chatml": ("<tool_call>", "</tool_call>", "<|im_start|>assistant"),
    "nemotron-v2": ("<TOOLCALL>", "</TOOLCALL>", "<SPECIAL_11>Assistant"),
    "llama-nemotron": ("<TOOLCALL>", "</TOOLCALL>", "<|start_header_id|>assistant<|end_header_id|>"),
    "llama-nemotron-v1.5": ("<TOOLCALL>", "</TOOLCALL>", "<|start_header_id|>assistant<|end_header_id|>"),
}


def _markup(fmt: str) -> tuple[str, str, str]:
    try:
        return MARKUP[fmt]
    except KeyError:
        raise ValueError(f"no tool-call rule for chat format {fmt!r}; known: {', '.join(MARKUP)}") from None


def assistant_region(text: str, fmt: str) -> str:
    """The text after the last assistant-turn marker (the whole text when there is none: a bare completion)."""
    marker = _markup(fmt)[2]
    return text.rsplit(marker, 1)[1] if marker in text else text


def parse_last_block(text: str, fmt: str = "chatml") -> list[dict[str, Any]] | None:
    """The calls in the last complete tool-call block, or None when there is none or it is malformed.

    Args:
        text: A response (or a transcript ending with one).
        fmt: Chat format whose markup to read.

    Returns:
        Calls as ``{"name": str, "arguments": ...}`` dicts (possibly ``[]``), or None.
    """
    open_tag, close_tag, _ = _markup(fmt)
    region = assistant_region(text, fmt)
    end = region.rfind(close_tag)
    if end < 0:
        return None
    start = region.rfind(open_tag, 0, end)
    if start < 0:
        return None
    body = region[start + len(open_tag) : end].strip()
    if not body:  # `<tool_call></tool_call>`: the model says no function applies
        return []
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    calls = value if isinstance(value, list) else [value]
    for c in calls:
        if not isinstance(c, dict) or "name" not in c or "arguments" not in c or not isinstance(c["name"], str):
            return None
    return [{"name": c["name"], "arguments": c["arguments"]} for c in calls]


def canonical(call: Mapping[str, Any]) -> tuple[str, str]:
    """``(name, arguments as JSON with sorted keys)``; gold arguments given as a JSON string are decoded first."""
    args = call.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            pass
    return str(call.get("name")), json.dumps(args, sort_keys=True, ensure_ascii=False)


def calls_match(pred: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]]) -> bool:
    """Multiset equality of canonical calls."""
    return Counter(canonical(c) for c in pred) == Counter(canonical(c) for c in gold)


def format_ok(text: str, fmt: str = "chatml", *, prompt_opens_think: bool = False) -> bool:
    """Tool-N1's format requirement: reasoning tags present and a well-formed last call block."""
    region = assistant_region(text, fmt)
    think = "</think>" in region and ("<think>" in region or prompt_opens_think)
    return think and parse_last_block(region, fmt) is not None


def score(response: str, gold: Sequence[Mapping[str, Any]], *, fmt: str = "chatml", require_think: bool = True,
          prompt_opens_think: bool = False) -> float:
    """Tool-N1 binary reward.

    Args:
        response: Model output (or a transcript ending with it).
        gold: Expected calls, each ``{"name", "arguments"}``.
        fmt: Chat format of the response's markup.
        require_think: Demand ``<think>...</think>`` (the paper's rule; False = its no-reason ablation).
        prompt_opens_think: The prompt pre-filled ``<think>``, so the response only closes it.

    Returns:
        1.0 or 0.0.
    """
    pred = parse_last_block(response, fmt)
    if pred is None:
        return 0.0
    if require_think and not format_ok(response, fmt, prompt_opens_think=prompt_opens_think):
        return 0.0
    return 1.0 if calls_match(pred, gold) else 0.0
