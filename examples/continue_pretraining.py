"""Continue pretraining a zoo model on your own text, on a CPU at tiny scale.

Purpose: the smallest complete continued-pretraining run to adapt: JSONL/Parquet text in, an HF-format model out;
  packed sequences with document boundaries, AdamW (0.9, 0.95), WSD schedule, optional FP8 (emulated on CPU),
  checkpoints you can resume after a kill (`--resume`).
Prerequisites: `pip install nemotron-zoo[train]`. Each line of a .jsonl file is {"text": "..."} (or pass
  `--field`); a directory of .jsonl/.parquet files works too.
Launch:   python examples/continue_pretraining.py --data my_text.jsonl --model nano-tiny --steps 100
          python examples/continue_pretraining.py              (the bundled sample text, nano-tiny, 20 steps)
Result:   OUT/final (HF layout) and OUT/metrics.jsonl.
Full scale: zoo/training/recipes/nano-12b-v2-base/pretrain.yaml (the same config, as YAML) with torchrun.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.training.config import (
    DataConfig,
    FP8Config,
    ModelConfig,
    OptimConfig,
    RecipeConfig,
    ScheduleConfig,
    SourceConfig,
    TrainConfig,
)

SAMPLE = Path(__file__).resolve().parents[1] / "zoo" / "training" / "recipes" / "_samples" / "text.jsonl"


def build_config(args: argparse.Namespace) -> RecipeConfig:
    """The run as one typed config (the structure a recipe YAML serialises)."""
    local = Path(args.model).is_dir()
    return RecipeConfig(
        stage="pretrain",
        description="examples/continue_pretraining.py",
        model=ModelConfig(path=args.model if local else None, entry=None if local else args.model, tiny=args.tiny),
        data=DataConfig(sources=[SourceConfig(name="text", path=str(args.data), field=args.field)],
                        seq_len=args.seq_len, pack=True),
        # Continued pretraining: a lower peak than from scratch, so the model keeps what it knew.
        optim=OptimConfig(lr=args.lr, min_lr=args.lr / 100),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=max(1, args.steps // 10), decay_fraction=0.3),
        fp8=FP8Config(enabled=args.fp8, bf16_first=1, bf16_last=1),
        train=TrainConfig(steps=args.steps, micro_batch_size=args.batch, precision="fp32", out_dir=str(args.out),
                          log_every=1, ckpt_every=max(1, args.steps // 4), seed=0),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SAMPLE, help="JSONL/Parquet file or directory (default: samples)")
    p.add_argument("--field", default="text")
    p.add_argument("--model", default="nano-tiny", help="zoo entry name or local HF directory")
    p.add_argument("--tiny", action="store_true", help="the entry's tiny random-init variant (smoke tests)")
    p.add_argument("--fp8", action="store_true", help="Nemotron-H FP8 recipe (emulated on CPU)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--out", type=Path, default=Path("runs/continue_pretraining"))
    args = p.parse_args(argv)

    from zoo.training.pretrain import pretrain

    res = pretrain(build_config(args), resume=args.resume)
    if res.history:
        print(f"loss {res.history[0]['loss']:.3f} -> {res.history[-1]['loss']:.3f} over {len(res.history)} steps; "
              f"model written to {args.out / 'final'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
