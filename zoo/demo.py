"""`make demo`: the embedded nano-tiny model, end to end on a CPU.

1. `zoo.load("nano-tiny")`: a ~2M-parameter Nemotron-H-pattern model (Mamba-2 + attention + MLP blocks) shipped
   inside the package, trained by this package's own recipe (`zoo train nano-tiny all`).
2. Chat with reasoning on (`/think`), off (`/no_think`), and with a thinking budget (the Nano-v2 client-side
   procedure in `zoo.chat`: cut the trace at the budget, close it, let the model answer).
3. An accuracy run over held-out word problems (never trained on): answers, exact-match accuracy with thinking on
   and off, per number of operations, plus tool-call accuracy and decoding speed.

`python -m zoo.demo --n 100` evaluates a quarter of the held-out split (the default, all 400, gives the numbers in
docs/training.md).
"""

from __future__ import annotations

import argparse
import time

import zoo


def _show_chat(m, prompt: str, **kw) -> None:
    t0 = time.perf_counter()
    r = m.chat(prompt, **kw)
    dt = time.perf_counter() - t0
    opts = ", ".join(f"{k}={v}" if k != "tools" else f"tools=[{', '.join(t['function']['name'] for t in v)}]"
                     for k, v in kw.items())
    shown = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    print(f"\n>>> {shown}" + (f"   [{opts}]" if opts else ""))
    if r.reasoning:
        print("  <think>")
        for line in r.reasoning.strip().splitlines():
            print(f"    {line}")
        print("  </think>")
    if r.tool_calls:
        print(f"  tool calls: {r.tool_calls}")
    print(f"  {r.text.strip()}")
    print(f"  ({r.completion_tokens} tokens, {r.completion_tokens / max(dt, 1e-9):.0f} tok/s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="nano-tiny demo: chat with /think, /no_think, a budget; accuracy run")
    p.add_argument("--n", type=int, default=400, help="held-out problems to evaluate (a quarter per operation count)")
    p.add_argument("--show", type=int, default=8, help="answers to print")
    args = p.parse_args(argv)

    from zoo.training.nano_tiny import corpus as C
    from zoo.training.nano_tiny.evaluate import evaluate
    from zoo.training.nano_tiny.recipe import heldout

    m = zoo.load("nano-tiny")
    print(f"nano-tiny: {m.num_parameters():,} parameters, block pattern {m.config.pattern} "
          f"(M Mamba-2, * attention, - MLP), vocabulary {m.config.vocab_size}, chat format {m.chat_format}")

    problems, tools = heldout()
    q = problems[250]["question"]  # a held-out problem with 3 operations
    _show_chat(m, f"{q} /think")
    _show_chat(m, f"{q} /no_think")
    _show_chat(m, f"{q} /think", thinking_budget=40)  # cut partway through the trace, then it must answer
    _show_chat(m, [{"role": "system", "content": C.SYSTEM}, {"role": "user", "content": tools[0]["request"]}],
               tools=C.TOOLS)

    per_k = max(1, args.n // 4)
    subset = [r for k in (1, 2, 3, 4) for r in [x for x in problems if x["n_ops"] == k][:per_k]]
    print(f"\nAccuracy run: {len(subset)} held-out problems ({per_k} per number of operations), "
          f"{len(tools)} tool tasks, greedy decoding")
    res = evaluate(m, subset, tools)
    on, off = res["think"], res["no_think"]
    step = max(1, len(subset) // max(args.show, 1))
    for i in range(0, len(subset), step)[: args.show]:
        r = subset[i]
        print(f"  [{r['n_ops']} ops] expected {r['answer']:>3}  think -> {on['answers'][i]!s:>4}  "
              f"no_think -> {off['answers'][i]!s:>4}  | {r['question'][:70]}...")
    print(f"\n{'':10s} {'all':>6s} {'1 op':>6s} {'2 ops':>6s} {'3 ops':>6s} {'4 ops':>6s} {'multi':>6s} {'tok/s':>7s}")
    for name, r in (("/think", on), ("/no_think", off)):
        ops = [r["by_ops"].get(k, 0.0) for k in (1, 2, 3, 4)]
        print(f"{name:10s} {r['accuracy']:6.1%} " + " ".join(f"{x:6.1%}" for x in ops)
              + f" {r['multi_step']:6.1%} {r['tokens_per_s']:7.0f}")
    if "tools" in res:
        print(f"tool calls: {res['tools']['accuracy']:.1%} exact ({res['tools']['n']} tasks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
