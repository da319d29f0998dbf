"""The GRPO claim in miniature on nano-tiny: prompts from the corpus generator, held-out evaluation before/after.

`zoo train nano-tiny grpo --out runs/nano-tiny-rl` runs `recipes/nano-tiny/grpo.yaml`: its `prepare` hook
(`prepare`) writes RL prompts, its `after` hook (`after`) evaluates the start and the end model on the held-out
split of `zoo.training.nano_tiny` (exact answers, thinking on and off, per number of operations; exact tool
calls) and writes `OUT/grpo/results.json`.

    OUT/rl-prompts/math.jsonl    arithmetic word problems (thinking on), reward = zoo.eval.math on "The answer is N"
    OUT/rl-prompts/tools.jsonl   tool requests (thinking off), reward = Tool-N1 binary rule on <TOOLCALL>

Prompts are drawn from the same generator with seeds of their own; every held-out question and tool request is
excluded, so the held-out numbers stay held out. Compare any two models:

    python -m zoo.training.rl.nano_tiny BEFORE AFTER [--limit N] [--json OUT]

BEFORE / AFTER: a registry name, a model directory, or a `results.json` of `zoo train nano-tiny all` (the same
greedy evaluation, read instead of recomputed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zoo.training.nano_tiny import corpus as C
from zoo.training.nano_tiny import recipe as NT

SEED_RL_MATH, SEED_RL_TOOLS = 5151, 6262
N_RL_MATH, N_RL_TOOLS = 4000, 1000


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    tmp.replace(path)


def write_prompts(root: Path) -> Path:
    """RL prompt files under `root/rl-prompts` (made once); returns the directory."""
    d = root / "rl-prompts"
    if (d / "math.jsonl").exists() and (d / "tools.jsonl").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    held_p, held_t = NT.heldout(None)
    exclude = {p["question"] for p in held_p}
    probs = C.problems(SEED_RL_MATH, N_RL_MATH, exclude=exclude)
    sys_msg = {"role": "system", "content": C.SYSTEM}
    _write(d / "math.jsonl", [{"prompt": [sys_msg, {"role": "user", "content": p.question}], "answer": str(p.answer),
                               "n_ops": p.n_ops, "id": f"math-{i}"} for i, p in enumerate(probs)])
    held_req = {t["request"] for t in held_t}
    tasks, seen = [], set(held_req)
    for t in C.tool_tasks(SEED_RL_TOOLS, 20 * N_RL_TOOLS):
        if t.request not in seen:
            seen.add(t.request)
            tasks.append(t)
        if len(tasks) == N_RL_TOOLS:
            break
    _write(d / "tools.jsonl", [{"prompt": [sys_msg, {"role": "user", "content": t.request}], "tools": C.TOOLS,
                                "answer": [t.call], "id": f"tool-{i}"} for i, t in enumerate(tasks)])
    return d


def prepare(cfg: Any, out_root: Path | None) -> None:
    """The recipe's `prepare` hook."""
    if out_root is None:
        raise ValueError("the nano-tiny grpo recipe needs a run root (zoo train passes --out)")
    d = write_prompts(Path(out_root))
    print(f"nano-tiny grpo: prompts in {d}", file=sys.stderr)


def evaluate_model(model_or_name: Any, *, limit: int | None = None) -> dict[str, Any]:
    """Held-out numbers of a model (name, directory or loaded model), greedy, as `nano_tiny.evaluate` scores them."""
    import torch

    import zoo
    from zoo.training.nano_tiny.evaluate import evaluate, summary

    model = zoo.load(str(model_or_name), dtype=torch.float32) if isinstance(model_or_name, (str, Path)) \
        else model_or_name
    problems, tools = NT.heldout(None)
    if limit:
        problems, tools = problems[:: max(len(problems) // limit, 1)][:limit], tools[:limit]
    return summary(evaluate(model, problems, tools))


def _line(name: str, res: dict[str, Any]) -> str:
    th, nt = res["think"], res["no_think"]
    tools = res.get("tools", {}).get("accuracy", float("nan"))
    return (f"{name:>8s}: think {th['accuracy']:.3f} (1-op {th['single_step']:.3f}, multi {th['multi_step']:.3f}) "
            f"| no_think {nt['accuracy']:.3f} | tools {tools:.3f}  [n={th['n']} problems, "
            f"{res.get('tools', {}).get('n', 0)} tool tasks]")


def after(cfg: Any, out_root: Path | None, final: Path) -> dict[str, Any]:
    """The recipe's `after` hook: before/after held-out numbers -> `train.out_dir/results.json`."""
    start = cfg.model.path or cfg.model.entry
    res = {"before": evaluate_model(start), "after": evaluate_model(final), "before_model": str(start),
           "after_model": str(final)}
    (Path(cfg.train.out_dir) / "results.json").write_text(json.dumps(res, indent=1))
    print(_line("before", res["before"]), file=sys.stderr)
    print(_line("after", res["after"]), file=sys.stderr)
    return res


def _numbers(model: str, limit: int | None) -> dict[str, Any]:
    # A results.json written by `zoo train nano-tiny all` (same evaluation, greedy) saves re-running the before model.
    if model.endswith(".json") and Path(model).is_file():
        if limit:
            raise SystemExit("--limit cannot apply to numbers read from a results.json")
        return json.loads(Path(model).read_text())
    return evaluate_model(model, limit=limit)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="nano-tiny held-out numbers of two models (before / after RL)")
    p.add_argument("before", help="name, model directory, or results.json of `zoo train nano-tiny all`")
    p.add_argument("after", help="name or model directory (e.g. runs/nano-tiny-rl/grpo/final)")
    p.add_argument("--limit", type=int, default=None, help="evaluate on N problems and N tool tasks only")
    p.add_argument("--json", default=None, help="write both results here")
    a = p.parse_args(argv)
    res = {"before": _numbers(a.before, a.limit), "after": _numbers(a.after, a.limit)}
    print(_line("before", res["before"]))
    print(_line("after", res["after"]))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
