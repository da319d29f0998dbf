"""zoo.chat end to end on a real tiny backbone: reasoning split, thinking budget, tool calls, streaming, hooks.

A random tiny model writes noise, so replies are steered by `Scripted`: it runs the real model (cache and all)
and then adds a large logit to the token a script asks for. Everything else (rendering, tokenizing, the generate
loop, the budget procedure, parsing) is the production path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

import zoo
from zoo.chat import CLOSE_THINKING, _close_index, build_prompt
from zoo.errors import ZooError
from zoo.modeling import ZooModel
from zoo.toolcalls import parse_tool_calls, split_reasoning


@pytest.fixture(scope="module")
def tiny():
    return zoo.load("nano-9b-v2", tiny=True, seed=0).eval()


class Scripted(nn.Module, ZooModel):
    """A zoo model whose next token is chosen by `script(turn_ids)` where the script has an opinion."""

    def __init__(self, inner: nn.Module, script: Callable[[list[int]], int | None]) -> None:
        super().__init__()
        self.inner, self.script = inner, script
        self.tokenizer, self.chat_format, self.hf_config = inner.tokenizer, inner.chat_format, inner.hf_config
        self.prompt_len = 0
        self.seq: list[int] = []
        self.prefill_extras: list[dict] = []

    def new_cache(self, batch_size: int):
        return self.inner.new_cache(batch_size)

    def forward(self, input_ids, attention_mask=None, cache=None, **extra):
        if input_ids.shape[1] > 1:  # prefill: the whole prompt (plus any earlier part of the turn)
            self.seq = input_ids[0].tolist()
            self.prefill_extras.append(extra)
        else:
            assert not extra, "model inputs must reach the prefill only"
            self.seq += input_ids[0].tolist()
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, cache=cache)
        want = self.script(self.seq[self.prompt_len :])
        if want is not None:
            out.logits[:, -1, want] += 1e4
        return out


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


def _steer(tiny, reasoning: str, answer: str, messages, **kw) -> Scripted:
    """Script: write `reasoning` (until the turn holds </think>), then `answer`, then end the turn."""
    tok = tiny.tokenizer
    r_ids, a_ids = _ids(tok, reasoning), _ids(tok, answer) + [tok.eos_token_id]

    def script(turn: list[int]) -> int:
        if not r_ids:  # the prompt closed the reasoning already
            return a_ids[min(len(turn), len(a_ids) - 1)]
        closed = _close_index(tok, turn)
        if closed is None:
            return r_ids[len(turn)] if len(turn) < len(r_ids) else _ids(tok, "x")[0]
        k = closed + 1
        while k < len(turn) and not tok.decode(turn[k : k + 1]).strip():
            k += 1  # the whitespace after </think> (part of the closing text) is not the answer
        return a_ids[min(len(turn) - k, len(a_ids) - 1)]

    model = Scripted(tiny, script)
    model.prompt_len = len(_ids(tok, build_prompt(tiny, messages, **kw)))
    return model


def test_reasoning_and_answer_are_split(tiny) -> None:
    model = _steer(tiny, "step one\nstep two\n</think>", "The answer is 4.", "2+2? /think")
    pieces: list[str] = []
    reply = model.chat("2+2? /think", max_new_tokens=60, on_text=pieces.append)
    assert reply.reasoning == "step one\nstep two"
    assert reply.text == "The answer is 4." and reply.tool_calls == []
    assert reply.reasoning_tokens == len(_ids(tiny.tokenizer, "step one\nstep two\n"))
    assert reply.prompt_tokens == model.prompt_len
    assert reply.completion_tokens == len(_ids(tiny.tokenizer, reply.raw)) + 1  # + the end-of-turn token
    assert "".join(pieces) == reply.raw


def test_thinking_off_prefills_closed_reasoning(tiny) -> None:
    model = _steer(tiny, "", "Four.", "2+2?", thinking=False)
    reply = model.chat("2+2?", thinking=False, max_new_tokens=20)
    assert reply.reasoning == "" and reply.text == "Four." and reply.reasoning_tokens == 0


@pytest.mark.parametrize("budget", [0, 5, 9, 1000])
def test_thinking_budget(tiny, budget: int) -> None:
    tok = tiny.tokenizer
    long_reasoning = "line one\nline two\nline three\nline four\nline five\n</think>"
    model = _steer(tiny, long_reasoning, "Done.", "Go")
    pieces: list[str] = []
    reply = model.chat("Go", thinking_budget=budget, max_new_tokens=80, on_text=pieces.append)
    natural = len(_ids(tok, long_reasoning.removesuffix("</think>")))
    assert reply.reasoning_tokens <= budget
    assert reply.text == "Done."
    if budget >= natural:  # the model closed its reasoning itself
        assert reply.reasoning_tokens == natural and CLOSE_THINKING not in reply.raw
        assert reply.reasoning == long_reasoning.removesuffix("</think>").strip()
    else:  # cut at the last newline inside the budget, closed with the card's text, then answered
        assert CLOSE_THINKING in reply.raw
        budget_text = tok.decode(_ids(tok, long_reasoning)[:budget])
        kept = budget_text[: budget_text.rfind("\n")] if "\n" in budget_text else budget_text
        assert reply.reasoning == (kept + ".").strip()
        assert reply.raw.startswith(kept + CLOSE_THINKING)
    assert "".join(pieces) == reply.raw


def test_tool_calls_parsed_and_malformed_kept(tiny) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    call = '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>'
    model = _steer(tiny, "need the tool\n</think>", call, "Weather in Paris?", tools=tools)
    reply = model.chat("Weather in Paris?", tools=tools, max_new_tokens=80)
    assert reply.tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert reply.text == "" and reply.reasoning == "need the tool"
    bad = '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": }]</TOOLCALL>'
    model = _steer(tiny, "x\n</think>", bad, "Weather in Paris?", tools=tools)
    reply = model.chat("Weather in Paris?", tools=tools, max_new_tokens=80)
    assert reply.tool_calls == [] and reply.text == bad


def test_multimodal_hook_and_text_only_errors(tiny) -> None:
    model = _steer(tiny, "\n</think>", "A cat.", "What is this?")
    seen = {}

    def prepare_chat_inputs(prompt, images=None, videos=None, audios=None):
        seen.update(prompt=prompt, images=images)
        return {"input_ids": torch.tensor([_ids(tiny.tokenizer, prompt)]), "pixel_marker": torch.ones(1)}

    with pytest.raises(ZooError, match="text only, got images"):
        model.chat("What is this?", images=["img"], max_new_tokens=5)
    model.prepare_chat_inputs = prepare_chat_inputs
    reply = model.chat("What is this?", images=["img"], max_new_tokens=30)
    assert seen["images"] == ["img"] and seen["prompt"].endswith("<SPECIAL_11>Assistant\n<think>\n\n")
    assert reply.text == "A cat." and all("pixel_marker" in e for e in model.prefill_extras)


def test_checkpoint_chat_template_wins(tiny) -> None:
    clone = copy.copy(tiny)
    object.__setattr__(clone, "tokenizer", copy.deepcopy(tiny.tokenizer))
    clone.tokenizer.chat_template = (
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]"
        "{% endif %}"
    )
    assert build_prompt(clone, "Hi /no_think") == "[user]Hi /no_think[assistant]"
    # thinking=... is written into the messages the Nemotron way before the checkpoint's template renders them
    assert build_prompt(clone, "Hi /no_think", thinking=True) == "[user]Hi  /think[assistant]"
    no_format = copy.copy(tiny)
    object.__setattr__(no_format, "chat_format", None)
    with pytest.raises(ZooError, match="neither a chat template nor a chat format"):
        build_prompt(no_format, "Hi")


@pytest.mark.parametrize(
    ("fmt", "text", "calls", "rest"),
    [
        (
            "nemotron-v2",
            'Sure.\n<TOOLCALL>[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": "{\\"b\\": 2}"}]</TOOLCALL>',
            [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": 2}}],
            "Sure.",
        ),
        (
            "llama-nemotron-v1.5",
            '<TOOLCALL>[{"function": {"name": "f", "arguments": {}}}]</TOOLCALL>',
            [{"name": "f", "arguments": {}}],
            "",
        ),
        (
            "chatml",
            '<tool_call>[{"name": "f", "arguments": {"x": "y"}}]</tool_call>',
            [{"name": "f", "arguments": {"x": "y"}}],
            "",
        ),
        (
            "chatml",
            '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>',
            [{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}],
            "",
        ),
        ("chatml", "<tool_call></tool_call>", [], ""),
        (
            "deepseek-r1",
            '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{"a": 1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
            [{"name": "f", "arguments": {"a": 1}}],
            "",
        ),
        (None, 'x <TOOLCALL>[{"name": "f", "arguments": {}}]</TOOLCALL>', [{"name": "f", "arguments": {}}], "x"),
        ("nemotron-v2", "no calls here", [], "no calls here"),
    ],
)
def test_parse_tool_calls(fmt, text, calls, rest) -> None:
    assert parse_tool_calls(text, fmt) == (rest, calls)


@pytest.mark.parametrize(
    "bad",
    [
        '<TOOLCALL>[{"name": "f", "arguments": {]</TOOLCALL>',
        '<TOOLCALL>[{"arguments": {}}]</TOOLCALL>',
        '<TOOLCALL>[{"name": "f", "arguments": {}}]',
        "<TOOLCALL>[1, 2]</TOOLCALL>",
    ],
)
def test_malformed_tool_calls_keep_raw_text(bad: str) -> None:
    assert parse_tool_calls(bad, "nemotron-v2") == (bad, [])


def test_split_reasoning() -> None:
    assert split_reasoning("a\n</think>\n\nb", prompt_opens_think=True) == ("a", "b", True)
    assert split_reasoning("still thinking", prompt_opens_think=True) == ("still thinking", "", False)
    assert split_reasoning("  <think>r</think>ans", prompt_opens_think=False) == ("r", "ans", True)
    assert split_reasoning("plain answer ", prompt_opens_think=False) == ("", "plain answer", True)


@pytest.mark.parametrize("budget", [6, 1000])
def test_thinking_budget_with_plain_text_markers(budget: int) -> None:
    # ChatML vocabularies have no atomic </think>: the budget phase stops on the *string* "</think>".
    tiny = zoo.load("acereason-nemotron-1.1-7b", tiny=True, seed=0).eval()
    tok = tiny.tokenizer
    assert len(_ids(tok, "</think>")) > 1
    reasoning = "first idea\nsecond idea\nthird idea\n</think>"
    model = _steer(tiny, reasoning, "Done.", "Go", thinking=True)
    reply = model.chat("Go", thinking=True, thinking_budget=budget, max_new_tokens=80)
    assert reply.text == "Done." and reply.reasoning_tokens <= budget
    if budget == 1000:
        assert reply.reasoning == "first idea\nsecond idea\nthird idea" and CLOSE_THINKING not in reply.raw
    else:
        assert CLOSE_THINKING in reply.raw and reply.reasoning.endswith(".")
