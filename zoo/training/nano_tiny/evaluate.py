"""Held-out evaluation of nano-tiny: exact answers with thinking on/off per number of operations, tool calls.

Prompts are rendered exactly as `zoo.chat` renders them (nemotron-v2, `/think` or `/no_think`), decoded greedily in
batches (`zoo.generate`), and scored by exact integer match of "The answer is N." after the reasoning. Tool tasks
score an exact match of the parsed `<TOOLCALL>` (name and arguments).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from typing import Any

import torch

from zoo.training.nano_tiny import corpus as C

_ANSWER = re.compile(r"The answer is (-?\d+)")


def parse_answer(text: str) -> int | None:
    """The integer after "The answer is", looking only after the reasoning when there is a `</think>`."""
    if "</think>" in text:
        text = text.split("</think>", 1)[1]
    m = _ANSWER.search(text)
    return int(m.group(1)) if m else None


def parse_call(text: str) -> dict[str, Any] | None:
    if "</think>" in text:
        text = text.split("</think>", 1)[1]
    m = re.search(r"<TOOLCALL>(.*?)</TOOLCALL>", text, re.S)
    if not m:
        return None
    try:
        calls = json.loads(m.group(1))
    except json.JSONDecodeError:
        return None
    return calls[0] if isinstance(calls, list) and calls and isinstance(calls[0], dict) else None


def _prompt_ids(model: Any, messages: list[dict[str, Any]], tools: list | None, think: bool) -> list[int]:
    from zoo.chat_formats import render

    text = render("nemotron-v2", messages, tools=tools, add_generation_prompt=True, thinking=think)
    return list(model.tokenizer.encode(text))


@torch.no_grad()
def _complete(model: Any, prompts: list[list[int]], max_new: int, batch: int) -> tuple[list[str], int, float]:
    from zoo.generate import generate

    texts, n_tokens, t0 = [], 0, time.perf_counter()
    for i in range(0, len(prompts), batch):
        outs = generate(model, prompts[i:i + batch], max_new_tokens=max_new, temperature=0.0)
        n_tokens += sum(len(o) for o in outs)
        texts += [model.tokenizer.decode(o, skip_special_tokens=False) for o in outs]
    return texts, n_tokens, time.perf_counter() - t0


def evaluate(model: Any, problems: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, *,
             batch: int = 50, max_new_think: int = 160, max_new_plain: int = 24) -> dict[str, Any]:
    """Accuracy on held-out problems with thinking on and off, per number of operations, and on tool tasks.

    Args:
        model: A loaded nano-tiny (eval mode).
        problems: Rows {"question", "answer", "n_ops"}.
        tools: Rows {"request", "call"} (optional).
        batch: Prompts decoded together.
        max_new_think: Token cap with thinking on (traces are ~20 tokens per operation).
        max_new_plain: Token cap with thinking off.

    Returns:
        {"think": {...}, "no_think": {...}, "tools": {...}} with accuracy overall, single-step (1 op), multi-step
        (2+ ops), per op count, generated tokens and tokens/s.
    """
    model.eval()
    res: dict[str, Any] = {}
    for think in (True, False):
        prompts = [_prompt_ids(model, [{"role": "system", "content": C.SYSTEM},
                                       {"role": "user", "content": p["question"]}], None, think) for p in problems]
        texts, n_tok, secs = _complete(model, prompts, max_new_think if think else max_new_plain, batch)
        by_ops: dict[int, list[bool]] = defaultdict(list)
        answers = []
        for p, t in zip(problems, texts):
            got = parse_answer(t)
            answers.append(got)
            by_ops[int(p["n_ops"])].append(got == int(p["answer"]))
        allc = [c for v in by_ops.values() for c in v]
        multi = [c for k, v in by_ops.items() if k >= 2 for c in v]
        res["think" if think else "no_think"] = {
            "accuracy": sum(allc) / max(len(allc), 1),
            "single_step": sum(by_ops[1]) / max(len(by_ops[1]), 1),
            "multi_step": sum(multi) / max(len(multi), 1),
            "by_ops": {k: sum(v) / len(v) for k, v in sorted(by_ops.items())},
            "n": len(allc), "tokens": n_tok, "tokens_per_s": n_tok / max(secs, 1e-9),
            "answers": answers, "texts": texts,
        }
    if tools:
        prompts = [_prompt_ids(model, [{"role": "system", "content": C.SYSTEM},
                                       {"role": "user", "content": t["request"]}], C.TOOLS, False) for t in tools]
        texts, n_tok, secs = _complete(model, prompts, 48, batch)
        ok = [parse_call(x) == t["call"] for t, x in zip(tools, texts)]
        res["tools"] = {"accuracy": sum(ok) / len(ok), "n": len(ok), "tokens": n_tok,
                        "tokens_per_s": n_tok / max(secs, 1e-9), "texts": texts}
    return res


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """The numbers only (no texts/answers), for results.json and the docs."""
    out = {}
    for k, v in res.items():
        out[k] = {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()
                  if kk not in ("answers", "texts")}
        if "by_ops" in out[k]:
            out[k]["by_ops"] = {str(a): round(b, 4) for a, b in out[k]["by_ops"].items()}
    return out
