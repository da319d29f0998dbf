"""`zoo list` and `zoo info NAME`."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'nano*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="config, parameters and memory plan of a model")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_info)


def cmd_list(args: argparse.Namespace) -> int:
    from zoo.registry import get_entry, list_models

    for name in list_models(args.pattern):
        e = get_entry(name)
        print(f"{name:28s} {e.family:14s} {e.hub_repo or '(shipped with zoo)':45s} {e.description}")
    return 0


def count_parameters(hf_config: dict) -> int | None:
    """Parameters of a language model config, computed from shapes on the meta device (no memory used)."""
    import torch

    from zoo.registry import architecture_class

    try:
        cls = architecture_class(hf_config.get("model_type"))
    except Exception:
        return None
    with torch.device("meta"):
        model = cls.from_hf_config(hf_config)
    return sum(p.numel() for p in model.parameters())


def cmd_info(args: argparse.Namespace) -> int:
    from zoo.loading import describe

    d = describe(args.name)
    d["parameters"] = count_parameters(d["config"])
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    for key in ("name", "family", "hub_repo", "chat_format", "license", "description"):
        print(f"{key:12s} {d[key]}")
    print(f"{'paper':12s} {', '.join(d['paper'])}")
    if d["parameters"]:
        print(f"{'parameters':12s} {d['parameters'] / 1e9:.2f} B")
    cfg = d["config"]
    if cfg.get("hybrid_override_pattern"):
        print(f"{'pattern':12s} {cfg['hybrid_override_pattern']}")
    _print_memory_plan(args.name, cfg)
    return 0


def _print_memory_plan(name: str, cfg: dict) -> None:
    """Memory at the model's full context, batch 1, bf16, and the longest context that fits an A10G (19.66 GiB)."""
    from zoo.errors import ZooError
    from zoo.memory import A10G_BUDGET_GIB, max_context, memory_plan

    text = cfg.get("text_config") or cfg
    context = int(text.get("max_position_embeddings") or 4096)
    try:
        plan = memory_plan(name, context)
    except ZooError:  # not a language model the planner understands: skip the section
        return
    print(f"{'memory':12s} bf16, batch 1, {context} tokens:")
    for line in plan.lines():
        print(f"{'':12s}   {line}")
    fits = max_context(name, A10G_BUDGET_GIB)
    print(f"{'':12s}   A10G budget {A10G_BUDGET_GIB} GiB: " + (f"fits up to {fits} tokens" if fits else "does not fit"))
