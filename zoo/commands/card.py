"""`zoo card NAME [--write]`, `zoo card --all --write` (regenerate every committed card), `zoo card --check`."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("card", help="render the model card of an entry (--all --write regenerates model_cards/)")
    p.add_argument("name", nargs="?", help="registry entry; omit with --all")
    p.add_argument("--all", action="store_true", help="every registered entry")
    p.add_argument("--write", action="store_true", help="write model_cards/NAME.md instead of printing")
    p.add_argument("--check", action="store_true", help="exit 1 when a committed card is stale or missing")
    p.set_defaults(func=cmd_card)


def cmd_card(args: argparse.Namespace) -> int:
    from zoo.cards import card_path, render_card, write_cards
    from zoo.errors import ZooError
    from zoo.registry import get_entry, list_models

    if args.all == bool(args.name):
        raise ZooError("zoo card: give either an entry NAME or --all")
    names = list_models() if args.all else [get_entry(args.name).name]
    if args.check:
        stale = [n for n in names
                 if not card_path(n).is_file() or card_path(n).read_text(encoding="utf-8") != render_card(n)]
        for name in stale:
            print(f"stale: {card_path(name)}", file=sys.stderr)
        if stale:
            print("regenerate with: zoo card --all --write", file=sys.stderr)
        return 1 if stale else 0
    if args.write:
        # --all also drops cards of entries that were removed or renamed, so model_cards/ mirrors the registry.
        for path in write_cards(names, prune=args.all):
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        return 0
    if args.all:
        raise ZooError("zoo card --all: add --write (or --check); printing every card is not useful")
    sys.stdout.write(render_card(names[0]))
    return 0
