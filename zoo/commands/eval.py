"""`zoo eval TASK --model NAME|PATH --data FILE.jsonl --out DIR`: evaluate a model on a registered task."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a task over a local JSONL file (resumable)")
    p.add_argument("task", help="registered task: math, code, toolcall, mcq, open, or one another area registered")
    p.add_argument("--model", required=True, help="registry name or local checkpoint directory")
    p.add_argument("--data", required=True, help="JSONL file, one row per line (fields: see docs/eval.md)")
    p.add_argument("--out", required=True, help="output directory: samples.jsonl (resume log) + results.json")
    p.add_argument("--k", type=int, default=1, help="samples per row (avg@k, pass@k)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--thinking", choices=["on", "off"], default=None, help="reasoning switch of the chat format")
    p.add_argument("--tiny", action="store_true", help="random-init tiny model of the entry (smoke tests)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    import zoo
    from zoo.errors import ZooError
    from zoo.eval.runner import _prompt_text, format_table, model_generator, read_jsonl, run_eval
    from zoo.eval.tasks import get_task

    if args.k < 1 or args.batch_size < 1:
        raise ZooError("--k and --batch-size must be at least 1")
    task = get_task(args.task)
    rows = read_jsonl(args.data, limit=args.limit)
    model = zoo.load(args.model, tiny=args.tiny, seed=args.seed)
    model.eval()
    thinking = None if args.thinking is None else args.thinking == "on"
    settings = {"model": args.model, "tiny": args.tiny, "max_new_tokens": args.max_new_tokens,
                "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed, "thinking": args.thinking}
    gen = model_generator(model, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          top_p=args.top_p, seed=args.seed)
    import torch

    with torch.inference_mode():
        results = run_eval(args.task, rows, prompt_fn=lambda r: _prompt_text(model, task, r, thinking), generate=gen,
                           out_dir=args.out, k=args.k, batch_size=args.batch_size, settings=settings,
                           source=str(args.data))
    print(format_table(results))
    return 0
