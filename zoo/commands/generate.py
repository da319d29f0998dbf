"""`zoo generate NAME PROMPT`: plain text completion (no chat template), streamed."""

from __future__ import annotations

import argparse
import sys

from zoo.commands.chat import add_sampling_args, load_model, sampling_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="complete a text prompt (no chat template)")
    p.add_argument("name", help="registry name or checkpoint directory")
    p.add_argument("prompt", help="text to continue")
    p.add_argument("--stop", action="append", default=None, metavar="TEXT", help="stop string (repeatable)")
    add_sampling_args(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from zoo.generate import generate

    model = load_model(args.name, args.tiny)
    # Plain completion: the tokenizer adds bos the way the checkpoint's tokenizer is configured to.
    ids = model.tokenizer(args.prompt).input_ids
    stream = generate(model, ids, stream=True, stop=args.stop, **sampling_kwargs(args))
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
