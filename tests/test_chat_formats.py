"""Built-in chat formats render byte-for-byte what the official templates render (golden strings)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from zoo.chat_formats import code_prompt, math_prompt, render, thinking_enabled, with_thinking
from zoo.errors import ZooError

GOLDEN_DIR = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN_DIR))
from chat_cases import CASES, TEMPLATES, WEATHER  # noqa: E402

GOLDEN: dict[str, dict[str, str | None]] = json.loads((GOLDEN_DIR / "chat_templates.json").read_text())
ROWS = [(fmt, key) for fmt, table in GOLDEN.items() for key, text in sorted(table.items()) if text is not None]


def _render_case(fmt: str, key: str) -> str:
    case, gen = key.split("|gen=")
    messages, tools = CASES[case]
    return render(fmt, messages, tools=tools, add_generation_prompt=bool(int(gen)))


def test_golden_table_covers_every_case() -> None:
    assert set(GOLDEN) == set(TEMPLATES)
    for table in GOLDEN.values():
        assert {k.split("|")[0] for k in table} == set(CASES)
    assert len(ROWS) >= 100


@pytest.mark.parametrize(("fmt", "key"), ROWS)
def test_matches_official_template(fmt: str, key: str) -> None:
    assert _render_case(fmt, key) == GOLDEN[fmt][key]


@pytest.mark.skipif(not Path("/work/shared/templates").is_dir(), reason="reference templates not available")
def test_golden_file_is_current() -> None:
    from render_chat_templates import render_all

    assert render_all(Path("/work/shared/templates")) == GOLDEN


def test_nemotron_v2_spot_checks() -> None:
    # A few facts written out, so a wrong golden file cannot hide a regression.
    assert render("nemotron-v2", [{"role": "user", "content": "Hi"}]) == (
        "<SPECIAL_10>System\n\n\n<SPECIAL_11>User\nHi\n<SPECIAL_11>Assistant\n<think>\n\n"
    )
    off = render("nemotron-v2", [{"role": "user", "content": "Hi /no_think"}])
    assert off.endswith("<SPECIAL_11>User\nHi\n<SPECIAL_11>Assistant\n<think></think>")
    multi = render("nemotron-v2", CASES["multi_turn_reasoning"][0])
    assert "Subtract" not in multi and "<SPECIAL_11>Assistant\nx = 2\n<SPECIAL_12>\n\n" in multi
    tools = render("nemotron-v2", CASES["tool_round_trip"][0], tools=[WEATHER])
    assert (
        '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]'
        in tools
    )
    assert '<SPECIAL_11>User\n<TOOL_RESPONSE>[{"temperature": 21}, "12:00"]</TOOL_RESPONSE>\n\n' in tools


@pytest.mark.parametrize("fmt", ["nemotron-v2", "llama-nemotron-v1.5"])
def test_thinking_switch_equals_flags_in_messages(fmt: str) -> None:
    base = CASES["multi_turn_reasoning"][0]
    for thinking in (True, False):
        text = render(fmt, base, thinking=thinking)
        assert thinking_enabled(fmt, with_thinking(fmt, base, thinking)) is thinking
        # nemotron-v2 strips flags everywhere; v1.5 reads (and strips) the system message only
        visible = text.replace("</think>", "") if fmt == "nemotron-v2" else text.split("<|eot_id|>")[0]
        assert "/think" not in visible and "/no_think" not in visible
        if fmt == "nemotron-v2":
            assert text.endswith("<think>\n\n" if thinking else "<think></think>")
            # switching with the argument renders the same bytes as writing the flag into the last user turn
            flagged = [dict(m) for m in base]
            flagged[-1]["content"] += " /think" if thinking else " /no_think"
            flagged[1]["content"] = "Solve 2x+3=7"
            flagged[3]["content"] = "And 3x=9?"
            assert text == render(fmt, flagged)
        else:
            assert text.endswith("assistant<|end_header_id|>\n\n" + ("" if thinking else "<think>\n\n</think>\n\n"))
    assert base[1]["content"] == "Solve 2x+3=7 /no_think"  # caller's messages untouched


def test_llama_nemotron_v1_detailed_thinking() -> None:
    text = render("llama-nemotron", [{"role": "user", "content": " Hi "}], thinking=True)
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\ndetailed thinking on<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    msgs = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert "detailed thinking off\n\nBe kind.<|eot_id|>" in render("llama-nemotron", msgs, thinking=False)
    assert thinking_enabled("llama-nemotron", with_thinking("llama-nemotron", msgs, False)) is False


def test_chatml_qwen25_layout_and_tool_n1_prompt() -> None:
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    assert render("chatml", msgs) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render("chatml", msgs[1:2], thinking=True).endswith("<|im_start|>assistant\n<think>\n")  # AceReason-1.1
    tool_msgs = CASES["tool_round_trip"][0]
    text = render("chatml", tool_msgs, tools=[WEATHER, {"name": "f", "parameters": {}}])
    system = text.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system\nAssistant with tools.\n\n")
    # Tool-N1: one {"type": "function", "function": ...} JSON per line inside <tools>, calls as a JSON list.
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in system
    assert '\n{"type": "function", "function": {"name": "f", "parameters": {}}}\n</tools>' in system
    assert "<think>" in system and "<tool_call>[" in system
    assert (
        '<|im_start|>assistant\n<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "get_time", "arguments": {}}]</tool_call><|im_end|>\n'
    ) in text
    # Qwen2.5 layout for results: consecutive tool messages share one user turn.
    assert (
        '<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response>\n<tool_response>\n"12:00"\n'
        "</tool_response><|im_end|>\n"
    ) in text


def test_acereason_prompts_and_errors() -> None:
    assert math_prompt("1+1?") == "1+1?\n\nPlease reason step by step, and put your final answer within \\boxed{}."
    assert code_prompt("Sum.").endswith("following format:\n```python\n# Your solution code here\n```")
    assert "Function header:\n```\ndef f(x):\n```" in code_prompt("Sum.", "def f(x):")
    assert (
        render("deepseek-r1", [{"role": "user", "content": "Q"}])
        == "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think>\n"
    )
    with pytest.raises(ZooError, match="always reasons"):
        render("deepseek-r1", [{"role": "user", "content": "Q"}], thinking=False)
    with pytest.raises(ZooError, match="unknown chat format 'x'"):
        render("x", [{"role": "user", "content": "Q"}])
    with pytest.raises(ZooError, match="empty"):
        render("chatml", [])
    with pytest.raises(ZooError, match="message 0"):
        render("chatml", [{"content": "no role"}])
