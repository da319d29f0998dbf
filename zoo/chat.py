"""`model.chat`: render the conversation, generate the reply (with an optional thinking budget), parse it.

Rendering: a checkpoint that ships a chat template is rendered with it (`tokenizer.apply_chat_template`), since
that template is the authority for that checkpoint; otherwise the zoo's built-in format (`zoo.chat_formats`)
named by `model.chat_format`. Multimodal models turn the rendered prompt plus images / videos / audios into model
inputs through `model.prepare_chat_inputs(prompt, images=, videos=, audios=) -> dict` (input_ids + extra inputs).

Thinking budget, as the Nemotron-Nano-v2 model card defines it (a client-side procedure, not a model feature):

1. generate the reasoning with at most `thinking_budget` new tokens, stopping at `</think>`;
2. if the reasoning did not close, cut it at its last newline and append the closing text `.\\n</think>\\n\\n`;
3. continue generating the answer after the closed reasoning, with the tokens left of `max_new_tokens`.

The cut is made on token boundaries (just before the last token that holds a newline), so the reasoning that the
model conditions on is made of tokens it generated and never exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo.chat_formats import FORMATS, render, with_thinking
from zoo.errors import ZooError
from zoo.generate import _eos_ids, generate
from zoo.toolcalls import parse_tool_calls, split_reasoning

__all__ = ["Reply", "chat", "build_prompt", "CLOSE_THINKING"]

# The text the Nano-v2 model card appends to a reasoning cut short by the budget.
CLOSE_THINKING = ".\n</think>\n\n"
_DEFAULT_MAX_NEW_TOKENS = 1024


@dataclass
class Reply:
    """One assistant reply.

    Attributes:
        text: the answer, without reasoning and without parsed tool-call markup (raw when the markup was malformed).
        reasoning: the text inside `<think>...</think>` ("" when the model did not reason).
        tool_calls: parsed calls, `{"name": str, "arguments": dict}`.
        prompt_tokens: tokens in the rendered prompt.
        completion_tokens: tokens of the assistant turn after the prompt (generated, plus the closing text
            inserted by a thinking budget).
        reasoning_tokens: generated tokens before the reasoning was closed.
        raw: the full assistant-turn text as generated (reasoning markup and tool calls included).
    """

    text: str
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    raw: str = ""


def _messages(messages_or_text: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(messages_or_text, str):
        return [{"role": "user", "content": messages_or_text}]
    return [dict(m) for m in messages_or_text]


def build_prompt(
    model: Any,
    messages_or_text: str | Sequence[Mapping[str, Any]],
    *,
    thinking: bool | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The prompt text `chat` sends: the checkpoint's own template when it has one, else the built-in format."""
    messages = _messages(messages_or_text)
    tok = getattr(model, "tokenizer", None)
    fmt = getattr(model, "chat_format", None)
    if tok is None:
        raise ZooError("chat: this model has no tokenizer (the checkpoint directory has no tokenizer files)")
    if getattr(tok, "chat_template", None):
        kwargs: dict[str, Any] = {}
        if thinking is not None:
            # Nemotron templates read flags from the messages; others (Qwen3-style) read `enable_thinking`.
            if fmt in FORMATS and fmt != "chatml":
                messages = with_thinking(fmt, messages, thinking)
            kwargs["enable_thinking"] = thinking
        try:
            return tok.apply_chat_template(
                messages, tools=list(tools) if tools else None, add_generation_prompt=True, tokenize=False, **kwargs
            )
        except Exception as e:  # jinja errors from the checkpoint's template: name the cause, one line
            raise ZooError(f"chat: the checkpoint's chat template failed: {type(e).__name__}: {e}") from None
    if fmt is None:
        raise ZooError("chat: the model has neither a chat template nor a chat format; use generate() for completion")
    return render(fmt, messages, tools=tools, thinking=thinking)


def _prepare_inputs(model: Any, prompt: str, images: Any, videos: Any, audios: Any) -> tuple[list[int], dict]:
    """Token ids of the prompt plus extra prefill inputs (pixel values, audio features)."""
    hook = getattr(model, "prepare_chat_inputs", None)
    if hook is not None:
        inputs = dict(hook(prompt, images=images, videos=videos, audios=audios))
        ids = inputs.pop("input_ids")
        inputs.pop("attention_mask", None)
        ids = (
            ids.reshape(-1).tolist()
            if isinstance(ids, torch.Tensor)
            else list(ids[0] if ids and isinstance(ids[0], list) else ids)
        )
        return ids, inputs
    media = [k for k, v in (("images", images), ("videos", videos), ("audios", audios)) if v]
    if media:
        raise ZooError(f"chat: this model takes text only, got {', '.join(media)}")
    # Chat templates write bos themselves where the format has one: never add special tokens again.
    return model.tokenizer(prompt, add_special_tokens=False).input_ids, {}


def _close_index(tok: Any, ids: list[int], marker: str = "</think>") -> int | None:
    """Number of generated tokens before the one that completes `marker` (None when it never appears)."""
    if marker not in tok.decode(ids, skip_special_tokens=False):
        return None
    lo, hi = 1, len(ids)  # smallest prefix whose text contains the marker
    while lo < hi:
        mid = (lo + hi) // 2
        if marker in tok.decode(ids[:mid], skip_special_tokens=False):
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


def _cut_at_last_newline(tok: Any, ids: list[int]) -> list[int]:
    """Keep the tokens before the last token holding a newline (all of them when none holds one)."""
    for i in range(len(ids) - 1, -1, -1):
        if "\n" in tok.decode(ids[i : i + 1], skip_special_tokens=False):
            return ids[:i]
    return ids


class _Run:
    """Generation of one assistant turn in phases, streaming its text to `on_text`."""

    def __init__(self, model: Any, prompt_ids: list[int], extra: dict, sampling: dict, on_text: Callable | None):
        self.model, self.prompt_ids, self.extra, self.sampling, self.on_text = (
            model,
            prompt_ids,
            extra,
            sampling,
            on_text,
        )
        self.tok = model.tokenizer
        self.ids: list[int] = []  # the assistant turn so far (generated + inserted)
        self.shown = ""  # text already passed to on_text
        self.end_ids = _eos_ids(model, sampling.get("eos_token_id"))

    def text(self) -> str:
        body = self.ids[:-1] if self.ids and self.ids[-1] in self.end_ids else self.ids
        return self.tok.decode(body, skip_special_tokens=False)

    def _show(self, text: str, *, hold_newline: bool = False) -> None:
        """Pass the not-yet-shown part of `text` to `on_text`."""
        if self.on_text is None:
            return
        if hold_newline:  # under a thinking budget the text after the last newline may still be cut
            text = text[: max(text.rfind("\n"), 0)]
        if not text.startswith(self.shown):
            # A budget cut removed text that was shown already; continue from the common part.
            n = 0
            while n < min(len(text), len(self.shown)) and text[n] == self.shown[n]:
                n += 1
            self.shown = text[:n]
        if len(text) > len(self.shown):
            self.on_text(text[len(self.shown) :])
            self.shown = text

    def step(self, max_new_tokens: int, *, hold_newline: bool = False, **overrides: Any) -> list[int]:
        """Generate up to `max_new_tokens` after the prompt and the turn so far; returns the new ids."""
        if max_new_tokens <= 0:
            return []
        kwargs = {**self.sampling, **overrides, "max_new_tokens": max_new_tokens}
        ids = self.prompt_ids + self.ids
        if self.on_text is None:
            new = generate(self.model, ids, **kwargs, **self.extra)[0]
        else:
            stream = generate(self.model, ids, stream=True, **kwargs, **self.extra)
            before = self.text()
            for _piece in stream:
                self._show(before + stream.text, hold_newline=hold_newline)
            new = stream.token_ids
        self.ids += new
        if not hold_newline:
            self._show(self.text())
        return new

    def insert(self, text: str) -> None:
        self.ids += self.tok(text, add_special_tokens=False).input_ids
        self._show(self.text())

    def ended(self) -> bool:
        return bool(self.ids) and self.ids[-1] in self.end_ids


def chat(
    model: Any,
    messages_or_text: str | Sequence[Mapping[str, Any]],
    *,
    thinking: bool | None = None,
    thinking_budget: int | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    images: Any = None,
    videos: Any = None,
    audios: Any = None,
    on_text: Callable[[str], None] | None = None,
    **sampling: Any,
) -> Reply:
    """Answer a conversation.

    Args:
        model: a zoo model with `tokenizer` and `chat_format` (or a tokenizer with a chat template).
        messages_or_text: a user message, or a list of `{"role", "content"}` messages (OpenAI style; assistant
            messages may carry `tool_calls`, tool results use role "tool").
        thinking: switch reasoning on/off in the format's way (`/think` `/no_think`, "detailed thinking on|off",
            a `<think>` pre-fill); None keeps the messages' own flags and the format's default.
        thinking_budget: most tokens of reasoning (Nano-v2 card procedure; see the module docstring).
        tools: JSON schemas of callable tools.
        images: images for vision models (passed to `model.prepare_chat_inputs`).
        videos: videos for vision models.
        audios: audio clips for audio models.
        on_text: called with each new piece of the assistant turn's text as it is generated (streaming).
        **sampling: `generate` settings: max_new_tokens (default 1024), temperature, top_p, top_k, seed, stop,
            eos_token_id. Defaults to greedy decoding; the Nano-v2 card recommends temperature 0.6, top_p 0.95
            with reasoning on.

    Returns:
        The parsed `Reply`.
    """
    if thinking_budget is not None and thinking_budget < 0:
        raise ZooError(f"chat: thinking_budget must be >= 0, got {thinking_budget}")
    if sampling.pop("stream", False):
        raise ZooError("chat: pass on_text=callback to stream a reply")
    max_new = int(sampling.pop("max_new_tokens", _DEFAULT_MAX_NEW_TOKENS))
    prompt = build_prompt(model, messages_or_text, thinking=thinking, tools=tools)
    prompt_ids, extra = _prepare_inputs(model, prompt, images, videos, audios)
    opens_think = prompt.rfind("<think>") > prompt.rfind("</think>")

    run = _Run(model, prompt_ids, extra, sampling, on_text)
    reasoning_tokens: int | None = None
    # The budget applies unless the prompt already closed the reasoning (thinking off pre-fills `<think></think>`).
    if thinking_budget is not None and not prompt.rstrip().endswith("</think>"):
        user_stop = sampling.get("stop")
        stops = ([user_stop] if isinstance(user_stop, (str, int)) else list(user_stop or [])) + ["</think>"]
        first = run.step(min(thinking_budget, max_new), stop=stops, hold_newline=True)
        reasoning_open = opens_think or run.text().lstrip().startswith("<think>")
        closed_at = _close_index(run.tok, first)
        if closed_at is not None:
            reasoning_tokens = closed_at
        elif reasoning_open and not run.ended():
            # Budget spent inside the reasoning: cut at the last newline, close it, then answer.
            kept = _cut_at_last_newline(run.tok, first)
            run.ids = run.ids[: len(run.ids) - len(first)] + kept
            run.insert(CLOSE_THINKING)
            reasoning_tokens = len(kept)
        else:
            run._show(run.text())
        if not run.ended():
            run.step(max_new - len(run.ids))
    else:
        run.step(max_new)

    run._show(run.text())
    raw = run.text()
    stop = sampling.get("stop")
    for s in [stop] if isinstance(stop, str) else [s for s in (stop or []) if isinstance(s, str)]:
        raw = raw.split(s, 1)[0]
    reasoning, answer, _closed = split_reasoning(raw, prompt_opens_think=opens_think)
    if reasoning_tokens is None:
        if opens_think or raw.lstrip().startswith("<think>"):
            closed_at = _close_index(run.tok, run.ids)
            reasoning_tokens = closed_at if closed_at is not None else len(run.ids)
        else:
            reasoning_tokens = 0
    text, calls = parse_tool_calls(answer, getattr(model, "chat_format", None))
    return Reply(
        text=text,
        reasoning=reasoning,
        tool_calls=calls,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(run.ids),
        reasoning_tokens=reasoning_tokens,
        raw=raw,
    )
