"""`zoo prune SRC OUT ...` (Minitron pruning of a checkpoint) and `zoo prune-search NAME ...` (memory-budget search)."""

from __future__ import annotations

import argparse
import json
import sys

from zoo.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a model (Minitron: width + depth, importance from calibration data)")
    p.add_argument("src", help="entry name or checkpoint directory")
    p.add_argument("out", help="output directory (HF layout)")
    p.add_argument("--tiny", action="store_true", help="prune the entry's tiny random variant (for trying it out)")
    p.add_argument("--hidden", type=int)
    p.add_argument("--ffn", type=int)
    p.add_argument("--mamba-heads", type=int)
    p.add_argument("--num-blocks", type=int, help="depth after pruning (iterative logit-MSE block removal)")
    p.add_argument("--drop-blocks", default="", help="explicit comma-separated block indices to drop")
    p.add_argument("--calib", help="JSONL with a `text` field for calibration (default: random tokens)")
    p.add_argument("--samples", type=int, default=1024, help="calibration samples (Minitron: 1024)")
    p.add_argument("--seq-len", type=int, default=512)
    p.set_defaults(func=cmd_prune)
    s = sub.add_parser("prune-search", help="child architectures of an entry that fit a memory budget")
    s.add_argument("name")
    s.add_argument("--budget-gib", type=float, default=19.66)
    s.add_argument("--context", type=int, default=131072)
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--num-blocks", default="", help="comma-separated depths (default: the parent's)")
    s.add_argument("--hidden", default="", help="comma-separated hidden sizes")
    s.add_argument("--ffn", default="", help="comma-separated FFN widths")
    s.add_argument("--mamba-heads", default="", help="comma-separated Mamba head counts")
    s.add_argument("--drop-order", default="", help="block removal order (default: the published 12B->9B blocks "
                                                    "for nano-12b-v2-base, else the last blocks first)")
    s.add_argument("--all", action="store_true", help="also list candidates over budget")
    s.set_defaults(func=cmd_search)
    register_study(sub)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}") from None


def _calibration(args: argparse.Namespace, model) -> list:
    import torch

    if args.calib is None:
        g = torch.Generator().manual_seed(0)
        n = max(1, args.samples // 8)
        return [torch.randint(0, model.config.vocab_size, (8, args.seq_len), generator=g) for _ in range(n)]
    if model.tokenizer is None:
        raise ConfigError(f"{args.src}: --calib needs a tokenizer in the checkpoint")
    from zoo.training.data import read_rows

    ids = []
    for _, text in read_rows(args.calib, "text"):
        ids.extend(model.tokenizer(text).input_ids)
        if len(ids) >= args.samples * args.seq_len:
            break
    rows = [ids[i:i + args.seq_len] for i in range(0, len(ids) - args.seq_len + 1, args.seq_len)][: args.samples]
    if not rows:
        raise ConfigError(f"{args.calib}: not enough text for one {args.seq_len}-token sample")
    return [torch.tensor(rows[i:i + 8]) for i in range(0, len(rows), 8)]


def cmd_prune(args: argparse.Namespace) -> int:
    import zoo
    from zoo.training.prune import PruneSpec, block_removal_order, estimate_importance, prune

    model = zoo.load(args.src, tiny=args.tiny, dtype="float32")
    calib = _calibration(args, model)
    imp = estimate_importance(model, calib)
    drop = _ints(args.drop_blocks)
    if args.num_blocks is not None and not drop:
        drop = block_removal_order(model, calib[:2], model.config.num_layers - args.num_blocks)
    spec = PruneSpec(hidden=args.hidden, ffn=args.ffn, mamba_heads=args.mamba_heads, drop_blocks=tuple(sorted(drop)))
    child = prune(model, spec, imp)
    child.tokenizer, child.chat_format = model.tokenizer, model.chat_format
    child.save_pretrained(args.out, lineage={"base_model": str(args.src), "recipe": "zoo prune (Minitron)",
                                             "prune": {k: v for k, v in vars(spec).items()}})
    print(f"{args.src}: {model.num_parameters() / 1e6:.2f}M -> {child.num_parameters() / 1e6:.2f}M parameters; "
          f"pattern {child.config.pattern}; written to {args.out}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from zoo.language.config import LMConfig
    from zoo.registry import get_entry
    from zoo.training.arch_search import enumerate_candidates, nano_9b_v2_drop_order

    parent = LMConfig.from_hf(get_entry(args.name).config)
    order = _ints(args.drop_order) or (nano_9b_v2_drop_order() if args.name == "nano-12b-v2-base"
                                       else list(range(parent.num_layers - 1, 0, -1)))
    cands = enumerate_candidates(
        parent, num_blocks=_ints(args.num_blocks) or [parent.num_layers],
        hidden=_ints(args.hidden) or [parent.hidden_size], ffn=_ints(args.ffn) or [parent.intermediate_size],
        mamba_heads=_ints(args.mamba_heads) or [parent.mamba_num_heads], drop_order=order,
        budget_gib=args.budget_gib, context=args.context, batch=args.batch, keep_too_big=args.all)
    print(f"{args.name}: {len(cands)} candidates at context {args.context}, batch {args.batch}, "
          f"budget {args.budget_gib} GiB", file=sys.stderr)
    for c in sorted(cands, key=lambda c: -c.params):
        print(c.describe())
    if not cands:
        print(json.dumps({"fits": 0}))
    return 0


def register_study(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("prune-study", help="pruned + distilled student vs the same architecture from scratch")
    s.add_argument("teacher", help="teacher checkpoint directory or entry (default: the shipped nano-tiny)")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--rows", type=int, default=16)
    s.add_argument("--seq-len", type=int, default=512)
    s.add_argument("--hidden", type=int, default=192)
    s.add_argument("--ffn", type=int, default=512)
    s.add_argument("--drop-blocks", default="", help="blocks to drop (default: none)")
    s.add_argument("--calibration-samples", type=int, default=256)
    s.add_argument("--n-eval", type=int, default=100)
    s.set_defaults(func=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zoo.registry import get_entry, has_entry
    from zoo.training.distill import PruneConfig
    from zoo.training.minitron_study import run_study

    teacher = Path(args.teacher)
    if not teacher.is_dir() and has_entry(args.teacher) and get_entry(args.teacher).local_path is not None:
        teacher = get_entry(args.teacher).local_path
    if not (teacher / "config.json").exists():
        raise ConfigError(f"{args.teacher}: not a checkpoint directory or a shipped entry")
    prune = PruneConfig(hidden=args.hidden, ffn=args.ffn, drop_blocks=_ints(args.drop_blocks),
                        calibration_samples=args.calibration_samples)
    res = run_study(teacher, args.out, prune=prune, steps=args.steps, rows=args.rows, seq_len=args.seq_len,
                    n_eval=args.n_eval)
    print(json.dumps({k: res[k] for k in ("teacher", "distilled", "scratch")}, indent=1))
    return 0
