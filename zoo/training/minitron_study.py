"""The Minitron claim in miniature: a pruned + distilled student beats the same architecture trained from scratch on
the same number of tokens.

    teacher (nano-tiny) --prune (importance on calibration data)--> student init --logit KD, N steps--> student
    same architecture, random init --next-token CE, N steps, same data stream--> scratch

Both runs see identical batches (same blend, seed, steps, rows and sequence length) on the nano-tiny corpus
(70% chat / 30% plain text, the Nano-v2 KD mix). Reported: held-out next-token loss on held-out chats (assistant
tokens only) and exact-answer accuracy on held-out problems with thinking on. Run with `zoo prune-study`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from zoo.training.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    PhaseConfig,
    RecipeConfig,
    ScheduleConfig,
    SourceConfig,
    TrainConfig,
)
from zoo.training.distill import KDConfig, PruneConfig
from zoo.training.distill_recipe import DistillRecipe, StudentConfig, _docs_fn, distill


def _data(corpus: Path, seq_len: int) -> DataConfig:
    return DataConfig(sources=[SourceConfig("post", str(corpus / "sft.jsonl"), "messages"),
                               SourceConfig("pretrain", str(corpus / "pretrain.jsonl"), "text")],
                      phases=[PhaseConfig(0.0, {"post": 0.7, "pretrain": 0.3})], seq_len=seq_len, pack=True)


@torch.no_grad()
def heldout_loss(model: Any, rows: list[dict[str, Any]], chat_format: str = "nemotron-v2") -> float:
    """Mean next-token cross-entropy on the assistant tokens of held-out chats (reasoning + answer)."""
    from zoo.training.loop import IGNORE_INDEX
    from zoo.training.nano_tiny import corpus as C
    from zoo.training.sft import render_sample

    total, count = 0.0, 0
    for r in rows:
        msgs = [{"role": "system", "content": C.SYSTEM}, {"role": "user", "content": r["question"]},
                {"role": "assistant", "content": f"The answer is {r['answer']}.", "reasoning_content": r["trace"]}]
        doc = render_sample(msgs, model.tokenizer, chat_format)
        ids = torch.as_tensor(doc.ids)[None]
        labels = ids.clone()
        if doc.loss_mask is not None:
            labels[0, ~torch.as_tensor(doc.loss_mask, dtype=torch.bool)] = IGNORE_INDEX
        logits = model(ids).logits[0, :-1].float()
        tgt = labels[0, 1:]
        total += torch.nn.functional.cross_entropy(logits, tgt, ignore_index=IGNORE_INDEX, reduction="sum").item()
        count += int((tgt != IGNORE_INDEX).sum())
    return total / max(count, 1)


def run_study(teacher_dir: str | Path, out: str | Path, *, prune: PruneConfig, steps: int = 300, rows: int = 16,
              seq_len: int = 512, kd_lr: float = 1e-3, scratch_lr: float = 3e-3, n_eval: int = 100,
              seed: int = 0) -> dict[str, Any]:
    """Train both students and evaluate them; writes `out/results.json` and returns it."""
    import zoo
    from zoo.training.nano_tiny.evaluate import evaluate
    from zoo.training.nano_tiny.recipe import heldout, write_corpus
    from zoo.training.stage import run_stage

    out = Path(out)
    corpus = out / "corpus"
    if not (corpus / "heldout.jsonl").exists():
        write_corpus(out)
    data = _data(corpus, seq_len)
    sched = ScheduleConfig(kind="wsd", warmup_steps=max(1, steps // 20), decay_fraction=0.3)

    def train(name: str) -> TrainConfig:
        return TrainConfig(steps=steps, micro_batch_size=rows, precision="fp32", seed=seed,
                           out_dir=str(out / name), log_every=max(1, steps // 10), ckpt_every=0)

    kd = DistillRecipe(stage="distill", teacher=ModelConfig(path=str(teacher_dir)), student=StudentConfig(prune=prune),
                       data=data, train=train("distill"), kd=KDConfig(), optim=OptimConfig(lr=kd_lr,
                                                                                                  min_lr=kd_lr / 100),
                       schedule=sched)
    distill(kd, out_root=out)
    student_cfg = json.loads((out / "distill" / "student_init" / "config.json").read_text())
    scratch = RecipeConfig(stage="pretrain", model=ModelConfig(hf_config=student_cfg, tokenizer=str(teacher_dir)),
                           data=data, train=train("scratch"),
                           optim=OptimConfig(lr=scratch_lr, min_lr=scratch_lr / 100), schedule=sched)
    run_stage(scratch, _docs_fn("nemotron-v2"), out_root=out)

    problems, _ = heldout(out)
    problems = problems[:: max(1, len(problems) // n_eval)][:n_eval]
    results: dict[str, Any] = {"teacher": str(teacher_dir), "steps": steps, "rows": rows, "seq_len": seq_len,
                               "tokens": steps * rows * seq_len, "prune": asdict(prune), "n_eval": len(problems)}
    for name, path in (("teacher", Path(teacher_dir)), ("distilled", out / "distill" / "final"),
                       ("scratch", out / "scratch" / "final")):
        m = zoo.load(path)
        acc = evaluate(m, problems, None)["think"]
        results[name] = {"params": m.num_parameters(), "heldout_loss": round(heldout_loss(m, problems), 4),
                         "accuracy": round(acc["accuracy"], 4), "multi_step": round(acc["multi_step"], 4)}
        print(f"{name:10s} params {results[name]['params']:>9,}  held-out loss {results[name]['heldout_loss']:.4f}  "
              f"accuracy {results[name]['accuracy']:.3f}", file=sys.stderr)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
