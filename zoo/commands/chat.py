"""`zoo chat NAME [PROMPT]`: stream one reply, or an interactive conversation when no prompt is given."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zoo.errors import ZooError


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `zoo chat` and `zoo generate`."""
    p.add_argument("--tiny", action="store_true", help="random tiny variant of a registry entry (no download)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="most tokens to generate (default 512)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); card: 0.6 with reasoning")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (card: 0.95 with reasoning)")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens (0 = all)")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")


def sampling_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "seed": args.seed,
    }


def _chat_options(p: argparse.ArgumentParser) -> None:
    think = p.add_mutually_exclusive_group()
    think.add_argument(
        "--think",
        dest="thinking",
        action="store_const",
        const=True,
        default=None,
        help="reasoning on (the format's own switch)",
    )
    think.add_argument("--no-think", dest="thinking", action="store_const", const=False, help="reasoning off")
    p.add_argument("--budget", type=int, default=None, metavar="N", help="thinking budget in tokens")
    p.add_argument("--tools", type=Path, default=None, metavar="FILE", help="JSON list of tool schemas")
    p.add_argument("--system", default=None, help="system message")
    add_sampling_args(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="chat with a model (streams; interactive without a prompt)",
        usage="zoo chat NAME [options] [PROMPT]",
    )
    p.add_argument("name", help="registry name or checkpoint directory")
    # argparse cannot place an optional positional after options, so everything after NAME is parsed again
    # (options and prompt words intermixed) by `_parse_rest`.
    p.add_argument(
        "rest", nargs=argparse.REMAINDER, metavar="PROMPT", help="one user message; omit it for an interactive session"
    )
    _chat_options(p)
    p.set_defaults(func=cmd_chat)


def _parse_rest(args: argparse.Namespace) -> None:
    inner = argparse.ArgumentParser(prog="zoo chat", usage="zoo chat NAME [options] [PROMPT]")
    _chat_options(inner)
    inner.add_argument("prompt", nargs="*")
    inner.parse_intermixed_args(args.rest, namespace=args)
    args.prompt = " ".join(args.prompt) if args.prompt else None


def read_tools(path: Path) -> list[dict[str, Any]]:
    """Tool schemas from a JSON file: a list of schemas, or {"tools": [...]}."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooError(f"{path}: tools file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ZooError(f"{path}: cannot read tools file ({e})") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    tools = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ZooError(f'{path}: expected a JSON list of tool schemas (objects), or {{"tools": [...]}}')
    for i, t in enumerate(tools):
        fn = t.get("function", t)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ZooError(
                f'{path}: tool {i} has no "name" (expected {{"type": "function", "function": '
                '{"name": ..., "parameters": ...}})'
            )
    return tools


def load_model(name: str, tiny: bool) -> Any:
    import zoo

    model = zoo.load(name, tiny=tiny)
    model.eval()
    if getattr(model, "tokenizer", None) is None:
        raise ZooError(f"{name}: the checkpoint has no tokenizer files, so it cannot chat or decode text")
    return model


def _reply(model: Any, messages: list[dict[str, Any]], args: argparse.Namespace, tools: list | None) -> Any:
    out = sys.stdout

    def show(piece: str) -> None:
        out.write(piece)
        out.flush()

    reply = model.chat(
        messages,
        thinking=args.thinking,
        thinking_budget=args.budget,
        tools=tools,
        on_text=show,
        **sampling_kwargs(args),
    )
    out.write("\n")
    if reply.tool_calls:
        out.write("[tool calls] " + json.dumps(reply.tool_calls, ensure_ascii=False) + "\n")
    out.flush()
    return reply


def cmd_chat(args: argparse.Namespace) -> int:
    _parse_rest(args)
    tools = read_tools(args.tools) if args.tools else None
    if args.budget is not None and args.budget < 0:
        raise ZooError(f"--budget must be >= 0, got {args.budget}")
    model = load_model(args.name, args.tiny)
    history: list[dict[str, Any]] = [{"role": "system", "content": args.system}] if args.system else []
    if args.prompt is not None:
        _reply(model, history + [{"role": "user", "content": args.prompt}], args, tools)
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print("zoo chat: /reset clears the conversation, /exit (or Ctrl-D) quits", file=sys.stderr)
    start = list(history)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("/exit", "/quit"):
            return 0
        text = line.rstrip("\n")
        if text.strip() == "/reset":
            history = list(start)
            continue
        if not text.strip():
            continue
        history.append({"role": "user", "content": text})
        reply = _reply(model, history, args, tools)
        # The raw turn keeps the reasoning; the chat templates drop it from earlier turns themselves.
        turn: dict[str, Any] = {"role": "assistant", "content": reply.raw}
        if reply.tool_calls:
            turn = {
                "role": "assistant",
                "content": reply.text,
                "tool_calls": [{"type": "function", "function": c} for c in reply.tool_calls],
            }
        history.append(turn)
