"""Supervised fine-tuning entrypoint: `sft(cfg)` for a `RecipeConfig` with `stage: sft`.

Nano-9B-v2 post-training (algorithms sheet 5), as this stage implements it:
- chat samples rendered with the model's own chat format (`zoo.chat_formats.render`), loss on the final assistant
  turn only (its reasoning, answer, tool calls and end-of-turn token); prompt tokens are context;
- reasoning on/off mix: a share of samples with reasoning is rendered with thinking off and no trace (~10% in the
  paper), teaching the `/no_think` switch;
- budget training: a share of samples cut their trace exactly as `zoo.chat`'s thinking budget does (first
  `budget` tokens, back to before the last newline token), insert the same closing text tokenized on its own
  (`.\n</think>\n\n`, context, not a target) and still end in the answer;
- packing per stage (`data.pack`; stage 2 of the paper turns it off for tool calling); full fine-tuning or LoRA.

Deviation: earlier assistant turns of a multi-turn sample are context, not targets (the chat templates drop their
reasoning, so training on them would teach answers without traces).

A sample is a JSONL/Parquet row with `messages` (role/content; the last one an assistant message that may carry
`reasoning_content` and `tool_calls`) and optionally `tools`. Prompt and completion are tokenized separately, as at
inference (the prompt alone, then generated tokens), so training sees the exact token boundary generation sees.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ConfigError
from zoo.training import loop
from zoo.training.config import RecipeConfig, SFTConfig, SourceConfig
from zoo.training.data import DataError, Document, read_rows
from zoo.training.stage import run_stage

# Tool-call markup of the final assistant turn, per chat format.
_TOOLCALL = {"nemotron-v2": ("<TOOLCALL>[", "]</TOOLCALL>"), "llama-nemotron": ("<TOOLCALL>[", "]</TOOLCALL>"),
             "llama-nemotron-v1.5": ("<TOOLCALL>[", "]</TOOLCALL>"), "chatml": ("<tool_call>[", "]</tool_call>")}
CLOSE_TRUNCATED = ".\n</think>\n\n"  # what `zoo.chat` appends when a thinking budget cuts the reasoning


def _calls_text(fmt: str, calls: list[dict[str, Any]], where: str) -> str:
    if fmt not in _TOOLCALL:
        raise DataError(f"{where}: tool calls are not supported for chat format {fmt!r}")
    norm = [c.get("function", c) for c in calls]
    body = ", ".join(json.dumps({"name": c["name"], "arguments": c.get("arguments", {})}) for c in norm)
    return _TOOLCALL[fmt][0] + body + _TOOLCALL[fmt][1]


def _turn_end(fmt: str, context: list[dict[str, Any]], tools: list | None, think: bool, eos: str) -> str:
    """The text a format puts between an assistant answer and its end-of-turn token ("\n" for nemotron-v2)."""
    from zoo.chat_formats import render

    probe = "\u2063probe\u2063"
    full = render(fmt, [*context, {"role": "assistant", "content": probe}], tools=tools, add_generation_prompt=False,
                  thinking=think)
    tail = full[full.rindex(probe) + len(probe):]
    return tail[: tail.index(eos) + len(eos)] if eos in tail else eos


def budget_cut(ids: list[int], budget: int, tokenizer: Any) -> list[int]:
    """`zoo.chat`'s thinking-budget cut: the first `budget` reasoning tokens, then everything from the last token
    holding a newline dropped (all kept when none holds one)."""
    ids = ids[:budget]
    for i in range(len(ids) - 1, -1, -1):
        if "\n" in tokenizer.decode(ids[i:i + 1], skip_special_tokens=False):
            return ids[:i]
    return ids


def render_sample(messages: list[dict[str, Any]], tokenizer: Any, fmt: str, *, tools: list | None = None,
                  mode: str = "think", budget: int | None = None, where: str = "sample") -> Document:
    """Token ids and loss mask of one chat sample.

    Args:
        messages: The conversation; the last message is the assistant turn to learn.
        tokenizer: The model's tokenizer (its eos ends the turn).
        fmt: Chat format name.
        tools: Tool schemas rendered into the prompt.
        mode: "think" (trace then answer), "no_think" (thinking off, no trace) or "truncated" (trace cut as a
            `budget`-token thinking budget cuts it, closed with `.\\n</think>\\n\\n`, then the answer).
        budget: Token budget of the reasoning for mode "truncated".
        where: `file:line` for error messages.

    Returns:
        Document whose loss_mask is True exactly on the tokens the model generates (the assistant turn after
        the prompt, through the end-of-turn token; not the closing text a budget inserts).
    """
    from zoo.chat_formats import render

    if not messages or messages[-1].get("role") != "assistant":
        raise DataError(f"{where}: the last message must be the assistant turn to learn")
    last = messages[-1]
    think = mode != "no_think"
    reasoning = str(last.get("reasoning_content") or "").strip("\n")
    answer = str(last.get("content") or "").strip()
    if last.get("tool_calls"):
        answer = (answer + "\n\n" if answer else "") + _calls_text(fmt, list(last["tool_calls"]), where)
    cut_ids = None
    if mode == "truncated":
        r_ids = list(tokenizer.encode(reasoning, add_special_tokens=False))
        if len(r_ids) > (budget or 0):
            cut_ids = budget_cut(r_ids, budget or 0, tokenizer)
        else:
            mode = "think"  # the trace fits the budget: the model closes it itself
    try:
        prompt = render(fmt, messages[:-1], tools=tools, add_generation_prompt=True, thinking=think)
    except Exception as e:
        raise DataError(f"{where}: cannot render the conversation ({e})") from None
    stripped = prompt.rstrip("\n")
    if not think:
        body = answer
    else:
        close = CLOSE_TRUNCATED if mode == "truncated" else "\n</think>\n\n"
        trace = reasoning + close
        if stripped.endswith("<think>"):
            body = trace.lstrip("\n") + answer  # the prompt pre-fills the opening of the reasoning
        elif stripped.endswith("</think>"):
            body = answer  # the format closes reasoning itself (no trace to learn)
        else:
            body = "<think>\n" + trace + answer
    end = _turn_end(fmt, messages[:-1], tools, think, tokenizer.eos_token)
    p_ids = list(tokenizer.encode(prompt))
    if cut_ids is not None and stripped.endswith("<think>"):
        # Exactly what `zoo.chat` feeds under a budget: the generated reasoning cut before its last newline
        # token, the closing text tokenized on its own (inserted by the client: context, not a target), then
        # the answer the model generates.
        close = list(tokenizer.encode(CLOSE_TRUNCATED, add_special_tokens=False))
        tail = list(tokenizer.encode(answer + end, add_special_tokens=False))
        ids = p_ids + cut_ids + close + tail
        mask = np.zeros(len(ids), dtype=bool)
        mask[len(p_ids):len(p_ids) + len(cut_ids)] = True
        mask[len(p_ids) + len(cut_ids) + len(close):] = True
        return Document(np.asarray(ids, dtype=np.int64), mask)
    c_ids = list(tokenizer.encode(body + end, add_special_tokens=False))
    ids = np.asarray(p_ids + c_ids, dtype=np.int64)
    mask = np.zeros(len(ids), dtype=bool)
    mask[len(p_ids):] = True
    return Document(ids, mask)


def chat_documents(source: SourceConfig, tokenizer: Any, cfg: RecipeConfig) -> list[Document]:
    """Render every row of a chat source, drawing each sample's mode (think / no_think / truncated) from a seed."""
    s: SFTConfig = cfg.sft or SFTConfig()
    rng = random.Random(f"{cfg.train.seed}:{source.name}")
    docs = []
    for where, row in read_rows(source.path, None):
        msgs = row.get(source.field)
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m for m in msgs):
            raise DataError(f"{where}: `{source.field}` must be a list of {{role, content}} messages")
        has_trace = bool(msgs and msgs[-1].get("reasoning_content"))
        mode = "think"
        u = rng.random()
        if has_trace and u < s.no_reasoning_fraction:
            mode = "no_think"
        elif has_trace and u < s.no_reasoning_fraction + s.truncated_reasoning_fraction:
            mode = "truncated"
        elif not has_trace and msgs and msgs[-1].get("role") == "assistant" and row.get("thinking") is False:
            mode = "no_think"
        budget = rng.randint(*s.truncation_budget)
        doc = render_sample(msgs, tokenizer, s.chat_format, tools=row.get("tools"), mode=mode, budget=budget,
                            where=where)
        if len(doc) > cfg.data.seq_len:
            raise DataError(f"{where}: sample has {len(doc)} tokens, more than data.seq_len={cfg.data.seq_len}")
        docs.append(doc)
    return docs


def sft(cfg: RecipeConfig, *, resume: bool = False, stop_after: int | None = None,
        out_root: str | Path | None = None) -> loop.FitResult:
    """Run an SFT stage; the fine-tuned model (LoRA merged) lands in `cfg.train.out_dir/final`.

    Args:
        cfg: A recipe with `stage: sft`.
        resume: Continue from the newest checkpoint in `cfg.train.out_dir`.
        stop_after: Stop after this many steps (simulated kill for tests).
        out_root: The recipe's run root (for its `prepare` hook).
    """
    if cfg.stage != "sft":
        raise ConfigError(f"sft() got a recipe for stage {cfg.stage!r}")
    # A chat sample is never cut in two: it needs its prompt to make sense of its targets.
    return run_stage(cfg, chat_documents, resume=resume, stop_after=stop_after, out_root=out_root, split_docs=False)
