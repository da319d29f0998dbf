"""`zoo aqa --model NAME|PATH --data ITEMS --out DIR`: the DCASE 2025 Task 5 audio QA harness (zoo.audio.aqa).

A command of its own because the generic `zoo eval` runner is text-only (no audio inputs, no shuffled
permutations, no likelihood scoring); `zoo.audio.aqa.main_eval` takes the same argument names, so `zoo eval aqa`
can route to it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from zoo.audio.aqa import add_arguments, main_eval

    p = sub.add_parser("aqa", help="audio question answering (DCASE 2025 Task 5): shuffled MCQ, CSV + JSON report")
    add_arguments(p)
    p.set_defaults(func=main_eval)
