"""`zoo push PATH REPO_ID`: release a local checkpoint directory to the Hugging Face Hub (validated first)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="validate a checkpoint folder and upload it as a Hub release with a model card")
    p.add_argument("path", help="local HF-format checkpoint directory (zoo save_pretrained, a training run, ...)")
    p.add_argument("repo_id", help="target Hub repo, 'namespace/name'")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to commit to (created from main when missing)")
    p.add_argument("--message", help="commit message")
    p.add_argument("--token", help="Hub token (default: saved login or HF_TOKEN)")
    p.add_argument("--base-model", help="lineage: the model this one was made from (Hub repo id or zoo entry)")
    p.add_argument("--relation", default="finetune", choices=("finetune", "adapter", "merge", "quantized"),
                   help="lineage: Hub base_model_relation (pruning/distillation count as finetune)")
    p.add_argument("--method", default="", help="lineage: what was done, e.g. 'SFT' or 'pruning + distillation'")
    p.add_argument("--recipe", default="", help="lineage: recipe used, e.g. nano-9b-v2/sft")
    p.add_argument("--data", default="", help="lineage: short summary of the training data")
    p.add_argument("--shard-size", type=int, default=5 * 1024**3, help="bytes per safetensors shard")
    p.add_argument("--no-transformers-check", action="store_true",
                   help="skip the transformers reload (saves a second copy of the weights in memory)")
    p.add_argument("--out", help="build the release folder here and keep it (default: a temporary directory)")
    p.set_defaults(func=cmd_push)


def cmd_push(args: argparse.Namespace) -> int:
    from zoo.cards import Lineage
    from zoo.errors import ZooError
    from zoo.release import push_folder

    lineage = None
    if args.base_model:
        lineage = Lineage(args.base_model, args.relation, args.method, args.recipe, args.data)
    elif args.method or args.recipe or args.data:
        raise ZooError("zoo push: --method/--recipe/--data describe a lineage and need --base-model")
    info = push_folder(args.path, args.repo_id, lineage=lineage, private=args.private, revision=args.revision,
                       commit_message=args.message, token=args.token, max_shard_size=args.shard_size,
                       check_transformers=not args.no_transformers_check, keep_folder=args.out)
    print(f"pushed {args.path} -> {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0
