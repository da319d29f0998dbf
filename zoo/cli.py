"""The `zoo` command line: one parser, one module per subcommand in `zoo.commands`.

Each module in COMMANDS exposes `register(subparsers)`, which adds its parser and sets `func` (a callable taking
the parsed namespace and returning an exit code). Modules are imported lazily so `zoo list` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from zoo.errors import ZooError

# Subcommand modules under zoo.commands, in the order `zoo --help` lists them.
COMMANDS: list[str] = [
    "models",  # list, info
    "train",  # train ENTRY STAGE [--tiny] [--resume]
    "prune",  # prune SRC OUT --hidden --ffn --mamba-heads --num-blocks; prune-search NAME --budget-gib
    "chat",  # chat NAME [PROMPT] [--think/--no-think] [--budget N] [--tools FILE]
    "generate",  # generate NAME PROMPT
    "card",  # card NAME [--write], card --all --write|--check
    "push",  # push PATH REPO_ID
    "eval",  # eval TASK --model NAME|PATH --data FILE.jsonl --out DIR
    "aqa",  # aqa --model NAME|PATH --data ITEMS --out DIR [--mode generation|likelihood] [--k 8]
    "curate",  # curate ingest|extract|cleanup|quality|dedup|decontam|crossthink|blend|gvendi|prismatic|gvendi-study
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="nemotron-zoo: Nemotron models, chat, training recipes.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"zoo.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ZooError as e:
        print(f"zoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
