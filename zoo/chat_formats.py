"""Built-in chat formats: render a conversation to the exact prompt text each model family was trained on.

Checkpoints that ship a chat template are rendered with it (`zoo.chat` calls `apply_chat_template`); these
renderers serve the checkpoints without one (tiny and locally trained models) and must agree byte for byte with
the official templates. Each renderer is a direct, readable restatement of its template's rules, including the odd
ones (listed per format), because the model saw exactly those bytes in training.

Formats:

* `nemotron-v2` (Nano-9B/12B-v2): `<SPECIAL_10>System` / `<SPECIAL_11>User` / `<SPECIAL_11>Assistant` turns,
  `<SPECIAL_12>` end of assistant turn; `/think` `/no_think` in system or user text toggle reasoning (the last
  message holding one wins; within one message `/think` wins) and are removed; the generation prompt is pre-filled
  with `<think>\\n\\n` (on) or `<think></think>` (off). The official template's tool instructions contain literal
  `{{"name": ...}}` double braces; we reproduce them.
* `llama-nemotron-v1.5` (Super-49B-v1.5): Llama-3 headers; the flag is read from the system message only; with
  thinking off the generation prompt is pre-filled with `<think>\\n\\n</think>\\n\\n`; tool results get a `tool` turn.
* `llama-nemotron` (v1: Nano-8B, Super, Ultra): Llama-3 headers; reasoning is the system text
  `detailed thinking on|off`. No official template was available to compare against: this follows the v1
  template as we know it (system always emitted, message text trimmed); its tool layout borrows v1.5's (UNVERIFIED).
* `deepseek-r1` (AceReason-Nemotron 1.0 on R1-Distill-Qwen): `<｜User｜>` / `<｜Assistant｜>`, bos first, system
  text straight after bos, generation prompt `<｜Assistant｜><think>\\n`; tools are not rendered (the template ignores
  them), tool calls / results use the DeepSeek-V3 markers.
* `chatml` (AceReason-1.1, Tool-N1, PrismMath, Eagle, Qwen2-Audio): `<|im_start|>role\\n...<|im_end|>\\n`, Qwen2.5
  layout for tool results (`<tool_response>` inside a user turn); no default system prompt (each of these models
  has its own); with tools, the Tool-N1 system block (tools one JSON per line in `<tools>`, reason in `<think>`,
  call with a JSON list in `<tool_call>`). `thinking=True` pre-fills `<think>\\n` (AceReason-1.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from zoo.errors import ZooError

__all__ = ["FORMATS", "render", "with_thinking", "thinking_enabled", "math_prompt", "code_prompt"]

Message = Mapping[str, Any]


def _tojson(x: Any) -> str:
    # What the templates' `tojson` filter writes under transformers: non-ASCII kept, default separators.
    return json.dumps(x, ensure_ascii=False)


def _text(content: Any) -> str:
    """Message content as text: None -> "", structured content (multimodal parts) -> its text parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text")
    return _tojson(content)


def _tool_schema(tool: Mapping[str, Any]) -> Any:
    return tool["function"] if "function" in tool else tool


def _calls_json(calls: Sequence[Mapping[str, Any]]) -> str:
    """`{"name": "f", "arguments": {...}}, ...` as the Nemotron templates write a call list (string args verbatim)."""
    parts = []
    for call in calls:
        fn = call["function"] if "function" in call else call
        args = fn.get("arguments", {})
        parts.append(
            '{"name": "' + fn["name"] + '", "arguments": ' + (args if isinstance(args, str) else _tojson(args)) + "}"
        )
    return ", ".join(parts)


def _strip_flags(text: str) -> str:
    return text.replace("/think", "").replace("/no_think", "")


def _check(messages: Sequence[Message]) -> list[Message]:
    if not messages:
        raise ZooError("chat: the conversation is empty")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m:
            raise ZooError(f"chat: message {i} must be a dict with a 'role' (got {m!r})")
    return list(messages)


# ---------------------------------------------------------------------------------------------- nemotron-v2
_NEMOTRON_TOOLS_HEAD = "You can use the following tools to assist the user if required:\n<AVAILABLE_TOOLS>["
_NEMOTRON_V2_TOOLS_TAIL = (
    "]</AVAILABLE_TOOLS>\n\n"
    "If you decide to call any tool(s), use the following format:\n"
    '<TOOLCALL>[{{"name": "tool_name1", "arguments": "tool_args1"}}, '
    '{{"name": "tool_name2", "arguments": "tool_args2"}}]</TOOLCALL>\n\n'
    "The user will execute tool-calls and return responses from tool(s) in this format:\n"
    '<TOOL_RESPONSE>[{{"tool_response1"}}, {{"tool_response2"}}]</TOOL_RESPONSE>\n\n'
    "Based on the tool responses, you can call additional tools if needed, correct tool calls if any errors are "
    "found, or just respond to the user."
)


def _tools_list(tools: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(_tojson(_tool_schema(t)) for t in tools)


def _nemotron_v2_thinking(messages: Sequence[Message]) -> bool:
    enabled = True
    for m in messages:
        if m["role"] in ("user", "system"):
            text = _text(m.get("content"))
            if "/think" in text:
                enabled = True
            elif "/no_think" in text:
                enabled = False
    return enabled


def _render_nemotron_v2(
    messages: Sequence[Message], tools: Sequence[Mapping] | None, add_generation_prompt: bool
) -> str:
    thinking = _nemotron_v2_thinking(messages)
    out = ["<SPECIAL_10>System\n"]
    system = ""
    if messages[0]["role"] == "system":
        system = _strip_flags(_text(messages[0].get("content"))).strip()
        out.append(system)
        messages = messages[1:]
    if tools:
        if system:
            out.append("\n\n")
        out += [_NEMOTRON_TOOLS_HEAD, _tools_list(tools), _NEMOTRON_V2_TOOLS_TAIL]
    out.append("\n\n")

    # A trailing assistant turn is held back: it becomes the (pre-filled) final turn.
    last_text, last_calls = "", []
    if messages and messages[-1]["role"] == "assistant":
        last_text = _text(messages[-1].get("content")).strip()
        last_calls = list(messages[-1].get("tool_calls") or [])
        messages = messages[:-1]

    for i, m in enumerate(messages):
        role, text = m["role"], _text(m.get("content"))
        prev_tool = i > 0 and messages[i - 1]["role"] == "tool"
        next_tool = i + 1 < len(messages) and messages[i + 1]["role"] == "tool"
        if role == "user":
            out.append("<SPECIAL_11>User\n" + _strip_flags(text).strip() + "\n")
        elif role == "tool":
            # Consecutive tool results share one user turn: <TOOL_RESPONSE>[r1, r2]</TOOL_RESPONSE>.
            if not prev_tool:
                out.append("<SPECIAL_11>User\n<TOOL_RESPONSE>[")
            out.append(text + (", " if next_tool else "]</TOOL_RESPONSE>\n\n"))
        elif role == "assistant":
            # Earlier turns keep only the answer: the text after the first </think> (up to any second one).
            if text and "</think>" in text:
                text = text.split("</think>")[1].strip()
            out.append("<SPECIAL_11>Assistant\n" + text.strip())
            if m.get("tool_calls"):
                if text.strip():
                    out.append("\n\n")
                out.append("<TOOLCALL>[" + _calls_json(m["tool_calls"]) + "]</TOOLCALL>")
            out.append("\n<SPECIAL_12>\n\n")
        # A system message after the first one is not rendered (its flag still counts).

    prefill = "<think>\n\n" if thinking else "<think></think>"
    if add_generation_prompt:
        out.append("<SPECIAL_11>Assistant\n" + prefill + last_text)
    else:
        if last_text:
            out.append("<SPECIAL_11>Assistant\n" + prefill + last_text + "\n<SPECIAL_12>\n\n")
        if last_calls:
            out.append(
                "<SPECIAL_11>Assistant\n<TOOLCALL>[" + _calls_json(last_calls) + "]</TOOLCALL>\n<SPECIAL_12>\n\n"
            )
    return "".join(out)


# ---------------------------------------------------------------------------------------------- llama-nemotron
_LLAMA_BOS = "<|begin_of_text|>"
_EOT = "<|eot_id|>"
_LLAMA_TOOLS_TAIL = (
    "]</AVAILABLE_TOOLS>\n\n"
    "If you decide to call any tool(s), use the following format:\n"
    '<TOOLCALL>[{{"name": "tool_name1", "arguments": "tool_args1"}}, '
    '{{"name": "tool_name2", "arguments": "tool_args2"}}]</TOOLCALL>\n\n'
    "Response from tool(s) will be returned in this format:\n"
    '<TOOL_RESPONSE>[{{"response": "tool_response1"}}, {{"response": "tool_response2"}}]</TOOL_RESPONSE>\n\n'
    "Based on the results returned by the tool(s), you can call additional tools if needed, correct tool calls if "
    "any errors are found, or just respond with the answer to the user."
)


def _header(role: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


def _llama_v15_thinking(messages: Sequence[Message]) -> bool:
    first = messages[0]
    if first["role"] == "system" and _text(first.get("content")):
        text = _text(first.get("content"))
        if "/no_think" in text:
            return False
    return True


def _llama_turns(messages: Sequence[Message], *, trim: bool) -> list[str]:
    """user / assistant / tool turns shared by both Llama-Nemotron versions (system messages are skipped)."""
    out = []
    for i, m in enumerate(messages):
        role, text = m["role"], _text(m.get("content"))
        prev_tool = i > 0 and messages[i - 1]["role"] == "tool"
        next_tool = i + 1 < len(messages) and messages[i + 1]["role"] == "tool"
        if role == "user":
            out.append(_header("user") + (text.strip() if trim else text) + _EOT)
        elif role == "assistant":
            if "</think>" in text:
                text = text.split("</think>")[-1].lstrip()
            out.append(_header("assistant") + (text.strip() if trim else text))
            if m.get("tool_calls"):
                out.append("<TOOLCALL>[" + _calls_json(m["tool_calls"]) + "]</TOOLCALL>")
            out.append(_EOT)
        elif role == "tool":
            if not prev_tool:
                out.append(_header("tool") + "<TOOL_RESPONSE>[")
            out.append(text + (", " if next_tool else "]</TOOL_RESPONSE>" + _EOT))
    return out


def _render_llama_v15(messages: Sequence[Message], tools: Sequence[Mapping] | None, add_generation_prompt: bool) -> str:
    out = [_LLAMA_BOS + _header("system")]
    thinking = True
    first = messages[0]
    if first["role"] == "system" and _text(first.get("content")) != "":
        system = _text(first.get("content"))
        if "/no_think" in system:
            system, thinking = system.replace("/no_think", "").strip(), False
        elif "/think" in system:
            system = system.replace("/think", "").strip()
        out.append(system + "\n\n")
    if tools:
        out += [_NEMOTRON_TOOLS_HEAD, _tools_list(tools), _LLAMA_TOOLS_TAIL]
    out.append(_EOT)
    out += _llama_turns(messages, trim=False)
    if add_generation_prompt:
        out.append(_header("assistant") + ("" if thinking else "<think>\n\n</think>\n\n"))
    return "".join(out)


def _render_llama_v1(messages: Sequence[Message], tools: Sequence[Mapping] | None, add_generation_prompt: bool) -> str:
    system = ""
    if messages[0]["role"] == "system":
        system, messages = _text(messages[0].get("content")).strip(), messages[1:]
    if tools:  # UNVERIFIED for v1: the v1.5 tool block after the system text
        system = (system + "\n\n" if system else "") + _NEMOTRON_TOOLS_HEAD + _tools_list(tools) + _LLAMA_TOOLS_TAIL
    out = [_LLAMA_BOS + _header("system") + system + _EOT]
    out += _llama_turns(messages, trim=True)
    if add_generation_prompt:
        out.append(_header("assistant"))
    return "".join(out)


# ---------------------------------------------------------------------------------------------- deepseek-r1
_DS_BOS = "<｜begin▁of▁sentence｜>"
_DS_EOS = "<｜end▁of▁sentence｜>"


def _render_deepseek(messages: Sequence[Message], tools: Sequence[Mapping] | None, add_generation_prompt: bool) -> str:
    del tools  # the R1-Distill template does not render tool schemas
    system = ""
    for m in messages:
        if m["role"] == "system":
            system = _text(m.get("content"))  # the last system message wins
    out = [_DS_BOS + system]
    # The template's flags: `first_call` is never reset, so only the very first call opens the calls block.
    first_call_done, in_tool, first_output = False, False, True
    for m in messages:
        role = m["role"]
        if role == "user":
            in_tool = False
            out.append("<｜User｜>" + _text(m.get("content")))
        if role == "assistant" and m.get("tool_calls"):
            in_tool = False
            for call in m["tool_calls"]:
                fn = call["function"] if "function" in call else call
                args = fn.get("arguments", {})
                body = (
                    "<｜tool▁call▁begin｜>"
                    + call.get("type", "function")
                    + "<｜tool▁sep｜>"
                    + fn["name"]
                    + "\n```json\n"
                    + (args if isinstance(args, str) else _tojson(args))
                    + "\n```<｜tool▁call▁end｜>"
                )
                out.append(("\n" + body) if first_call_done else ("<｜Assistant｜><｜tool▁calls▁begin｜>" + body))
                first_call_done = True
            out.append("<｜tool▁calls▁end｜>" + _DS_EOS)
        if role == "assistant" and m.get("content") is not None:
            text = _text(m.get("content"))
            if in_tool:
                out.append("<｜tool▁outputs▁end｜>" + text + _DS_EOS)
                in_tool = False
            else:
                if "</think>" in text:
                    text = text.split("</think>")[-1]
                out.append("<｜Assistant｜>" + text + _DS_EOS)
        if role == "tool":
            in_tool = True
            text = _text(m.get("content"))
            if first_output:
                out.append("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + text + "<｜tool▁output▁end｜>")
                first_output = False
            else:
                out.append("\n<｜tool▁output▁begin｜>" + text + "<｜tool▁output▁end｜>")
    if in_tool:
        out.append("<｜tool▁outputs▁end｜>")
    if add_generation_prompt and not in_tool:
        out.append("<｜Assistant｜><think>\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------- chatml
# Our wording of the Tool-N1 training prompt's structure (arXiv 2505.00024, section 7 of the algorithm sheet).
_TOOL_N1_HEAD = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function calls to achieve the purpose.\n\n"
    "The available functions are listed below, one JSON object per line, inside <tools></tools>:\n<tools>\n"
)
_TOOL_N1_TAIL = (
    "\n</tools>\n\n"
    "In every reply, first reason about the request inside <think> </think>, then give the calls as a JSON list "
    "inside <tool_call> </tool_call>, both in the same reply. For example:\n"
    "<think>The user asks for X; the function f computes X from the argument a.</think>\n"
    '<tool_call>[{"name": "f", "arguments": {"a": "value"}}]</tool_call>\n'
    "If none of the functions applies, reply with <think> </think> followed by <tool_call>[]</tool_call>."
)


def _tool_n1_block(tools: Sequence[Mapping[str, Any]]) -> str:
    lines = [_tojson(t if "function" in t else {"type": "function", "function": t}) for t in tools]
    return _TOOL_N1_HEAD + "\n".join(lines) + _TOOL_N1_TAIL


def _render_chatml(
    messages: Sequence[Message], tools: Sequence[Mapping] | None, add_generation_prompt: bool, thinking: bool | None
) -> str:
    out = []
    rest = messages
    if tools:
        system = ""
        if messages[0]["role"] == "system":
            system, rest = _text(messages[0].get("content")), messages[1:]
        out.append(
            "<|im_start|>system\n" + (system + "\n\n" if system else "") + _tool_n1_block(tools) + "<|im_end|>\n"
        )
    for i, m in enumerate(rest):
        role, text = m["role"], _text(m.get("content"))
        prev_tool = i > 0 and rest[i - 1]["role"] == "tool"
        next_tool = i + 1 < len(rest) and rest[i + 1]["role"] == "tool"
        if role == "tool":
            # Qwen2.5 layout: consecutive results share one user turn, each in its own <tool_response> block.
            out.append(("" if prev_tool else "<|im_start|>user") + "\n<tool_response>\n" + text + "\n</tool_response>")
            if not next_tool:
                out.append("<|im_end|>\n")
        elif role == "assistant" and m.get("tool_calls"):
            calls = "<tool_call>[" + _calls_json(m["tool_calls"]) + "]</tool_call>"
            out.append("<|im_start|>assistant\n" + (text + "\n" if text else "") + calls + "<|im_end|>\n")
        else:
            out.append(f"<|im_start|>{role}\n{text}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n" + ("<think>\n" if thinking else ""))
    return "".join(out)


# ---------------------------------------------------------------------------------------------- public API
_Renderer = Callable[[Sequence[Message], "Sequence[Mapping] | None", bool], str]
_RENDERERS: dict[str, _Renderer] = {
    "nemotron-v2": _render_nemotron_v2,
    "llama-nemotron": _render_llama_v1,
    "llama-nemotron-v1.5": _render_llama_v15,
    "deepseek-r1": _render_deepseek,
}
FORMATS: tuple[str, ...] = (*_RENDERERS, "chatml")


def render(
    fmt: str,
    messages: Sequence[Message],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    thinking: bool | None = None,
) -> str:
    """Render a conversation in a built-in chat format.

    Args:
        fmt: one of `FORMATS`.
        messages: dicts with `role` (system/user/assistant/tool) and `content`; assistant messages may carry
            `tool_calls` (`[{"function": {"name", "arguments"}}]` or `[{"name", "arguments"}]`).
        tools: JSON schemas of the callable tools (`{"type": "function", "function": {...}}` or the bare function).
        add_generation_prompt: end with the opening of an assistant turn (including any reasoning pre-fill).
        thinking: turn reasoning on/off in the format's own way (see `with_thinking`); None leaves the messages'
            own flags (or the format's default) in charge.

    Returns:
        The prompt text, byte-identical to the official template's output for the same inputs.
    """
    if fmt not in FORMATS:
        raise ZooError(f"unknown chat format {fmt!r}; known: {', '.join(FORMATS)}")
    msgs = _check(messages)
    if fmt == "chatml":
        return _render_chatml(msgs, tools, add_generation_prompt, thinking)
    msgs = with_thinking(fmt, msgs, thinking)
    return _RENDERERS[fmt](msgs, tools, add_generation_prompt)


def with_thinking(fmt: str, messages: Sequence[Message], thinking: bool | None) -> list[Message]:
    """Return the messages with reasoning switched on/off the way `fmt` is told (the messages are not modified).

    * nemotron-v2: every `/think` `/no_think` is removed and the chosen flag is appended to the last user message
      (or to the system message when there is no user message), where it wins.
    * llama-nemotron-v1.5: the flag goes at the end of the system message (created when absent).
    * llama-nemotron: the system message becomes `detailed thinking on|off` (+ a blank line and the old system text).
    * deepseek-r1 always thinks; `thinking=False` is an error. chatml: handled by `render` as a pre-fill.
    """
    msgs = [dict(m) for m in messages]
    if thinking is None or fmt == "chatml":
        return msgs
    flag = "/think" if thinking else "/no_think"
    if fmt == "nemotron-v2":
        for m in msgs:
            if m["role"] in ("user", "system") and isinstance(m.get("content"), str):
                m["content"] = _strip_flags(m["content"])
        target = next((m for m in reversed(msgs) if m["role"] == "user"), None)
        if target is None:
            if msgs[0]["role"] != "system":
                msgs.insert(0, {"role": "system", "content": ""})
            target = msgs[0]
        target["content"] = (_text(target.get("content")) + " " + flag).lstrip()
    elif fmt == "llama-nemotron-v1.5":
        if msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": ""})
        text = _strip_flags(_text(msgs[0].get("content"))).strip()
        msgs[0]["content"] = (text + " " + flag).lstrip()
    elif fmt == "llama-nemotron":
        switch = "detailed thinking " + ("on" if thinking else "off")
        if msgs[0]["role"] == "system":
            old = _text(msgs[0].get("content")).strip()
            for s in ("detailed thinking on", "detailed thinking off"):
                old = old.replace(s, "").strip()
            msgs[0]["content"] = switch + ("\n\n" + old if old else "")
        else:
            msgs.insert(0, {"role": "system", "content": switch})
    elif fmt == "deepseek-r1" and not thinking:
        raise ZooError(
            "chat format 'deepseek-r1' always reasons (its prompt ends with <think>); thinking=False is not supported"
        )
    return msgs


def thinking_enabled(fmt: str, messages: Sequence[Message]) -> bool | None:
    """Whether the rendered prompt asks for reasoning (None: the format has no switch, the model decides)."""
    if fmt == "nemotron-v2":
        return _nemotron_v2_thinking(messages)
    if fmt == "llama-nemotron-v1.5":
        return _llama_v15_thinking(messages)
    if fmt == "llama-nemotron":
        first = messages[0] if messages else {}
        return first.get("role") == "system" and "detailed thinking on" in _text(first.get("content"))
    if fmt == "deepseek-r1":
        return True
    return None


# ---------------------------------------------------------------------------------------------- prompt helpers
MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_FORMAT = (
    "Write Python code to solve the problem. Please place the solution code in the following format:\n"
    "```python\n# Your solution code here\n```"
)


def math_prompt(question: str) -> str:
    """AceReason-Nemotron 1.0 math user turn: the question, then the boxed-answer instruction."""
    return f"{question.strip()}\n\n{MATH_INSTRUCTION}"


def code_prompt(question: str, starter_code: str | None = None) -> str:
    """AceReason-Nemotron 1.0 code user turn, with the function-header variant when starter code is given."""
    if starter_code:
        return (
            f"{question.strip()}\n\nSolve the problem starting with the provided function header.\n\n"
            f"Function header:\n```\n{starter_code.strip()}\n```\n\n"
            "Please place the solution code in the following format:\n```python\n# Your solution code here\n```"
        )
    return f"{question.strip()}\n\n{CODE_FORMAT}"
