"""Parse what a model wrote: reasoning (`<think>...</think>`) and tool calls, for every chat format.

Tool-call markup per format:

* `nemotron-v2`, `llama-nemotron`, `llama-nemotron-v1.5`: `<TOOLCALL>[{"name": ..., "arguments": {...}}, ...]</TOOLCALL>`
* `chatml`: `<tool_call>...</tool_call>` holding a JSON list (Tool-N1) or one JSON object per block (Qwen2.5 style)
* `deepseek-r1`: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\nARGS\\n```<｜tool▁call▁end｜>` inside
  `<｜tool▁calls▁begin｜>...<｜tool▁calls▁end｜>`

Parsing never raises: model output is untrusted text. When the markup is present but malformed (bad JSON, a call
without a name, an unclosed block), the result has no tool calls and the text is returned unchanged, so the caller
can show the raw output.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["parse_tool_calls", "split_reasoning"]

_BLOCKS = {
    "nemotron": re.compile(r"<TOOLCALL>(.*?)</TOOLCALL>", re.S),
    "chatml": re.compile(r"<tool_call>(.*?)</tool_call>", re.S),
}
_OPENERS = {"nemotron": "<TOOLCALL>", "chatml": "<tool_call>"}
_DS_CALL = re.compile(
    r"<｜tool▁call▁begin｜>(.*?)<｜tool▁sep｜>(.*?)\n```(?:json)?\n(.*?)\n```<｜tool▁call▁end｜>", re.S
)
_DS_SECTION = re.compile(r"<｜tool▁calls▁begin｜>.*?(?:<｜tool▁calls▁end｜>|$)", re.S)
_FAMILY = {
    "nemotron-v2": "nemotron",
    "llama-nemotron": "nemotron",
    "llama-nemotron-v1.5": "nemotron",
    "chatml": "chatml",
    "deepseek-r1": "deepseek",
}


class _Malformed(ValueError):
    pass


def _normalise(item: Any) -> dict[str, Any]:
    """One call as `{"name": str, "arguments": ...}`; accepts the OpenAI `{"function": {...}}` wrapper."""
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item = item["function"]
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise _Malformed(item)
    args = item.get("arguments", item.get("parameters", {}))
    if isinstance(args, str):
        try:  # some models write arguments as a JSON string
            args = json.loads(args)
        except json.JSONDecodeError:
            pass
    return {"name": item["name"], "arguments": args}


def _json_calls(body: str) -> list[dict[str, Any]]:
    body = body.strip()
    if not body:  # Tool-N1: an empty block means "no function applies"
        return []
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise _Malformed(body) from e
    return [_normalise(v) for v in (value if isinstance(value, list) else [value])]


def _parse_blocks(family: str, text: str) -> tuple[str, list[dict[str, Any]]]:
    pattern = _BLOCKS[family]
    calls: list[dict[str, Any]] = []
    for body in pattern.findall(text):
        calls += _json_calls(body)
    rest = pattern.sub("", text)
    if _OPENERS[family] in rest:  # an opener without its closer: generation was cut inside the call
        raise _Malformed(rest)
    return rest, calls


def _parse_deepseek(text: str) -> tuple[str, list[dict[str, Any]]]:
    calls = []
    for _kind, name, args in _DS_CALL.findall(text):
        try:
            parsed = json.loads(args)
        except json.JSONDecodeError as e:
            raise _Malformed(args) from e
        calls.append(_normalise({"name": name.strip(), "arguments": parsed}))
    if "<｜tool▁call▁begin｜>" in text and not calls:
        raise _Malformed(text)
    return _DS_SECTION.sub("", text), calls


def parse_tool_calls(text: str, chat_format: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Extract tool calls from a reply.

    Args:
        text: the answer part of a reply (after any reasoning).
        chat_format: which markup to look for; None tries every format's markup (checkpoint templates).

    Returns:
        (text without the call markup, stripped; calls as `{"name", "arguments"}` dicts). On malformed markup:
        (the original text, []).
    """
    family = _FAMILY.get(chat_format or "")
    families = [family] if family else ["nemotron", "chatml", "deepseek"]
    rest, calls = text, []
    try:
        for fam in families:
            rest, found = _parse_deepseek(rest) if fam == "deepseek" else _parse_blocks(fam, rest)
            calls += found
    except _Malformed:
        return text, []
    return (rest.strip() if rest != text else text), calls


def split_reasoning(completion: str, *, prompt_opens_think: bool) -> tuple[str, str, bool]:
    """Split a completion into (reasoning, answer, closed).

    Args:
        completion: the generated text of the assistant turn.
        prompt_opens_think: the prompt ended inside an open `<think>` (a reasoning pre-fill), so the completion
            starts in the middle of the reasoning.

    Returns:
        reasoning (stripped; "" when none), the answer text (stripped), and whether the reasoning was closed
        (False when generation stopped inside it: then everything is reasoning and the answer is "").
    """
    body = completion
    if not prompt_opens_think:
        stripped = completion.lstrip()
        if not stripped.startswith("<think>"):
            return "", completion.strip(), True
        body = stripped[len("<think>") :]
    if "</think>" not in body:
        return body.strip(), "", False
    reasoning, answer = body.split("</think>", 1)
    return reasoning.strip(), answer.strip(), True
