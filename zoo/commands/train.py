"""`zoo train ENTRY STAGE [--tiny] [--resume] [--out DIR] [--set KEY=VALUE ...]`: run a shipped training recipe.

Under `torchrun --nproc-per-node N -m zoo.cli train ...` the stage shards with FSDP2 when its recipe sets
`train.fsdp: true`.
"""

from __future__ import annotations

import argparse

import yaml

from zoo.errors import ConfigError


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=10), got {p!r}")
        out[key] = yaml.safe_load(value)
    return out


def _run(args: argparse.Namespace) -> int:
    if args.stage == "grpo":  # RL has its own typed recipe (GRPORecipe) and loop
        from zoo.training.grpo import run_grpo as run_recipe
    else:
        from zoo.training.run import run_recipe

    root = run_recipe(args.entry, args.stage, tiny=args.tiny, resume=args.resume, out=args.out,
                      overrides=_overrides(args.set))
    print(f"done: {root}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run a training recipe (pretrain, sft, ..., or all)",
                       description="Run zoo/training/recipes/ENTRY/STAGE.yaml (STAGE `all`: the whole recipe).")
    p.add_argument("entry", help="zoo entry with shipped recipes, e.g. nano-tiny, nano-9b-v2")
    p.add_argument("stage", help="pretrain | sft | ... | all")
    p.add_argument("--tiny", action="store_true", help="use the recipe's `tiny:` profile (runs on a laptop CPU)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of the run")
    p.add_argument("--out", default=None, help="run root (default runs/ENTRY[-tiny]); `{out}` in recipes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set train.steps=10 (repeatable)")
    p.set_defaults(func=_run)
