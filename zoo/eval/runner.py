"""`zoo eval`: run a registered task over a local JSONL file with a model; results JSON + table; resumable.

For each row the task builds a prompt; the model answers ``k`` times (batched generation); the task scores each
answer. Metrics: ``avg@k`` (mean score over all samples; pass@1 when k = 1) and ``pass@k`` (share of rows with at
least one sample scoring 1).

Resuming: every finished sample is appended to ``<out>/samples.jsonl`` (flushed per batch) keyed by row index and
sample index; a rerun with the same arguments skips what is there. The summary ``<out>/results.json`` is
written atomically at the end. A samples file written with different settings is refused, not mixed in.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.eval.tasks import RowError, Task, get_task
from zoo.jsonl import iter_jsonl

__all__ = ["read_jsonl", "run_eval", "model_generator", "format_table"]

Generator = Callable[[Sequence[str], int], list[str]]  # (prompts, sample index) -> completions


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    """Rows of a JSONL file; errors name the file and line."""
    rows = []
    for _, row in iter_jsonl(path, ZooError):
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def model_generator(model: Any, *, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                    seed: int = 0) -> Callable[[Sequence[str], int], list[str]]:
    """A generator over a zoo model: prompt texts in, completions out (one batched `model.generate` call)."""
    tok = model.tokenizer
    if tok is None:
        raise ZooError("eval: the model has no tokenizer")

    def gen(prompts: Sequence[str], sample: int) -> list[str]:
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        out = model.generate(ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             seed=seed + sample if temperature > 0 else None)
        return [tok.decode(o, skip_special_tokens=True) for o in out]

    return gen


def _prompt_text(model: Any, task: Task, row: dict, thinking: bool | None) -> str:
    from zoo.chat import build_prompt

    tools = task.tools(row) if task.tools else None
    return build_prompt(model, task.prompt(row), thinking=thinking, tools=tools)


def _prefill(prompt: str) -> str:
    """The reasoning the prompt already opened (``<think>`` pre-fill), to put back in front of the completion."""
    tail = prompt.rstrip()
    return "<think>\n" if tail.endswith("<think>") else ""


def run_eval(task_name: str, rows: Sequence[dict], *, prompt_fn: Callable[[dict], str], generate: Generator,
             out_dir: str | Path, k: int = 1, batch_size: int = 8, settings: dict | None = None,
             source: str = "") -> dict:
    """Evaluate ``rows`` on a task.

    Args:
        task_name: Registered task.
        rows: JSONL rows.
        prompt_fn: Row -> prompt text (the model's chat format applied).
        generate: (prompt texts, sample index) -> completions.
        out_dir: Where ``samples.jsonl`` and ``results.json`` go.
        k: Samples per row.
        batch_size: Prompts per generate call.
        settings: Generation settings, recorded and checked on resume.
        source: Data file name, for messages and the results.

    Returns:
        The results dict (also written to ``results.json``).
    """
    task = get_task(task_name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples_path = out / "samples.jsonl"
    header = {"task": task_name, "k": k, "n_rows": len(rows), "settings": settings or {}, "source": source}
    done: dict[tuple[int, int], dict] = {}
    if samples_path.exists():
        with open(samples_path, encoding="utf-8") as f:
            lines = [json.loads(x) for x in f if x.strip()]
        if lines and lines[0].get("header") != header:
            raise ZooError(f"{samples_path}: written with other settings ({lines[0].get('header')}); use a new --out")
        done = {(s["row"], s["sample"]): s for s in lines[1:]}
    else:
        samples_path.write_text(json.dumps({"header": header}) + "\n", encoding="utf-8")
    prompts: dict[int, str] = {}
    for i, row in enumerate(rows):
        try:
            prompts[i] = prompt_fn(row)
        except RowError as e:
            raise ZooError(f"{source or 'data'}: row {i + 1}: {e}") from None
    with open(samples_path, "a", encoding="utf-8") as log:
        for j in range(k):
            todo = [i for i in range(len(rows)) if (i, j) not in done]
            for b in range(0, len(todo), batch_size):
                batch = todo[b : b + batch_size]
                completions = generate([prompts[i] for i in batch], j)
                for i, text in zip(batch, completions, strict=True):
                    response = _prefill(prompts[i]) + text
                    try:
                        s = float(task.score(rows[i], response))
                    except RowError as e:
                        raise ZooError(f"{source or 'data'}: row {i + 1}: {e}") from None
                    rec = {"row": i, "sample": j, "score": s, "response": response}
                    done[(i, j)] = rec
                    log.write(json.dumps(rec, ensure_ascii=False) + "\n")
                log.flush()
    per_row = [[done[(i, j)]["score"] for j in range(k)] for i in range(len(rows))]
    n = max(len(rows), 1)
    results = {
        **header,
        f"avg@{k}": sum(sum(r) / k for r in per_row) / n,
        f"pass@{k}": sum(1.0 for r in per_row if max(r, default=0.0) >= 1.0) / n,
        "per_row": [sum(r) / k for r in per_row],
    }
    _atomic_write(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


def format_table(results: dict) -> str:
    """A small text table of the headline metrics."""
    keys = [k for k in results if "@" in k]
    head = f"{'task':<12} {'rows':>6} " + " ".join(f"{k:>10}" for k in keys)
    row = f"{results['task']:<12} {results['n_rows']:>6} " + " ".join(f"{results[k]:>10.4f}" for k in keys)
    return head + "\n" + row
