"""Held-out accuracy of the trained tiny models, next to chance.

Vision: fresh items of the generated tasks (a seed the training stream never uses), each option scored by the
mean log-probability of its tokens as the assistant's reply (options listed in a random order in the prompt, as in
training); argmax wins. Audio: a held-out synthetic set written in the DCASE format and scored by the AQA harness
(`zoo.audio.aqa`, K shuffled permutations, likelihood mode), which reports per part both shuffle aggregations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.training.multimodal.vision_tasks import TASKS, make_item, render_question

__all__ = ["evaluate_audio", "evaluate_vision", "option_scores"]


@torch.no_grad()
def option_scores(model: nn.Module, user: str, options: Sequence[str], images: Sequence[Any] = (),
                  videos: Sequence[Any] = ()) -> list[float]:
    """Mean token log-probability of each option as the reply to `user` (one batched forward).

    Returns:
        One score per option, in the given order.
    """
    proc = model.processor
    base = proc([{"role": "user", "content": user}], list(images), list(videos), add_generation_prompt=True)
    ctx = base["input_ids"][0].tolist()
    conts = [proc.tokenizer.encode(o, add_special_tokens=False) for o in options]
    width = max(len(ctx) + len(c) for c in conts)
    ids = torch.zeros((len(conts), width), dtype=torch.long)
    for i, c in enumerate(conts):
        ids[i, : len(ctx) + len(c)] = torch.tensor(ctx + c)  # right padding: never seen by earlier positions
    pixels = base.get("pixel_values")
    if pixels is not None:
        pixels = pixels.repeat(len(conts), 1, 1, 1)  # each row holds the same media, in the same order
    logp = torch.log_softmax(model(ids, pixel_values=pixels).logits.float(), dim=-1)
    out = []
    for i, c in enumerate(conts):
        pos = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(c))
        out.append(float(logp[i, pos, torch.tensor(c)].mean()))
    return out


def evaluate_vision(model: nn.Module, *, n_per_task: int = 50, seed: int = 12345,
                    tasks: Sequence[str] = TASKS) -> dict[str, Any]:
    """Held-out accuracy per task, with chance (1 / options) and the macro average over tasks."""
    model.eval()
    rng = np.random.default_rng(seed)
    res: dict[str, Any] = {"tasks": {}, "n_per_task": n_per_task, "seed": seed}
    for task in tasks:
        correct, chance = 0, 0.0
        for _ in range(n_per_task):
            item = make_item(task, rng)
            order = rng.permutation(len(item.choices))
            shown = [item.choices[i] for i in order]
            scores = option_scores(model, render_question(item.question, shown), shown, item.images, item.videos)
            correct += shown[int(np.argmax(scores))] == item.answer
            chance += 1 / len(shown)
        res["tasks"][task] = {"accuracy": correct / n_per_task, "chance": chance / n_per_task}
    accs = [v["accuracy"] for v in res["tasks"].values()]
    res["macro"] = {"accuracy": sum(accs) / len(accs),
                    "chance": sum(v["chance"] for v in res["tasks"].values()) / len(accs)}
    return res


def evaluate_audio(model: nn.Module, out: str | Path, *, n_per_task: int = 50, seed: int = 12345,
                   k: int = 8) -> dict[str, Any]:
    """Write a held-out synthetic AQA set under `out/heldout` and score it with the harness (likelihood mode)."""
    from zoo.audio.aqa import evaluate, likelihood_scorer, load_aqa, write_report
    from zoo.audio.synthetic import write_synthetic_aqa

    model.eval()
    data = write_synthetic_aqa(Path(out) / "heldout", n_per_task=n_per_task, seed=seed)
    result = evaluate(load_aqa(data), mode="likelihood", score=likelihood_scorer(model), k=k, seed=0)
    write_report(result, Path(out) / "aqa_report.json", data=str(data))
    return result.metrics


def write_json(path: str | Path, obj: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m zoo.training.multimodal.evaluate --model nano-vl-tiny`: held-out accuracy table vs chance."""
    import argparse

    import zoo

    p = argparse.ArgumentParser(description="Held-out accuracy of a VLM on the generated image/video task set.")
    p.add_argument("--model", default="nano-vl-tiny", help="zoo entry or checkpoint directory")
    p.add_argument("--n-per-task", type=int, default=100)
    p.add_argument("--seed", type=int, default=12345, help="held-out seed (training streams use 0, 1000, ...)")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    res = evaluate_vision(zoo.load(args.model, dtype=torch.float32), n_per_task=args.n_per_task, seed=args.seed)
    print(f"{'task':<8}{'n':>5}{'accuracy':>10}{'chance':>8}")
    for task, r in res["tasks"].items():
        print(f"{task:<8}{args.n_per_task:>5}{r['accuracy']:>10.3f}{r['chance']:>8.3f}")
    print(f"{'macro':<8}{'':>5}{res['macro']['accuracy']:>10.3f}{res['macro']['chance']:>8.3f}")
    if args.out:
        write_json(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
