"""Hybrid vs attention-only: Nemotron-Nano-v2's throughput claim in miniature (input 8k / output 16k scaled to 1k / 2k).

Run: ``python -m benchmarks.hybrid_vs_transformer [--quick] [--end-to-end]``.

Two zoo models with the same widths and (nearly) the same parameter count: the Nemotron-H pattern
(``benchmarks._models.HYBRID``, 2 attention blocks in 16) and an attention-only model (``*-`` repeated). For each:

* per-token decode time against context length, at batch 1 and 8: the cache is filled to each length (attention K/V
  set to random values of the right size, Mamba state random: step time does not depend on the values), then the
  best of a few decode steps is taken;
* prefill time of the 1k prompt;
* the same curve out to 24k tokens at batch 1 and 8, giving the decode-phase tokens/s of the paper's own setting
  (8k in, 16k out), without its (minutes-long) prefill;
* tokens/s for "1k in, 2k out" = batch * 2048 / (prefill + sum of the step times over contexts 1024 .. 3071, by
  trapezoidal integration of the measured curve). ``--end-to-end`` also times the real generation at batch 1
  (minutes on a 2-core CPU, so not part of ``make bench``).

Writes ``results/hybrid_vs_transformer.json`` and ``results/hybrid_vs_transformer.png``.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks._common import plot_lines, print_table, write_json
from benchmarks._models import HYBRID
from zoo.kernels import dispatch


def build(pattern: str | None) -> torch.nn.Module:
    """A zoo LanguageModel with the HYBRID widths and ``pattern`` (None: the hybrid pattern), random init."""
    from zoo.language.config import LMConfig
    from zoo.language.model import LanguageModel

    hf = {"model_type": "nemotron_h", "architectures": ["NemotronHForCausalLM"], **HYBRID}
    if pattern is not None:
        hf["hybrid_override_pattern"] = pattern
    hf["num_hidden_layers"] = len(hf["hybrid_override_pattern"])
    model = LanguageModel(LMConfig.from_hf(hf))
    model.init_weights(generator_seed=0)
    return model.eval()


def equal_size_attention_pattern(hybrid: torch.nn.Module) -> str:
    """``*-`` repeated so the attention-only model's parameter count is closest to the hybrid's."""
    target = sum(p.numel() for p in hybrid.parameters())
    best, gap = "*-", None
    for pairs in range(1, 64):
        n = sum(p.numel() for p in build("*-" * pairs).parameters())
        if gap is not None and abs(n - target) > gap:
            break
        best, gap = "*-" * pairs, abs(n - target)
    return best


def filled_cache(model: torch.nn.Module, batch: int, length: int, room: int):
    """A cache as if ``length`` tokens had been seen, with capacity for ``room`` more (no growth while timing)."""
    from zoo.language.cache import KVState, MambaState

    cache = model.new_cache(batch)
    gen = torch.Generator().manual_seed(0)
    for state in cache.layers:
        if isinstance(state, KVState):
            shape = (batch, state.k.shape[1], length + room, state.k.shape[3])
            state.k, state.v = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
            state.length = length
        elif isinstance(state, MambaState):
            state.conv.normal_(generator=gen)
            state.ssm.normal_(generator=gen).mul_(0.1)
    cache.seq_len = length
    cache.next_position += length
    return cache


def step_time(model: torch.nn.Module, batch: int, length: int, steps: int) -> float:
    """Best seconds per decode step at context ``length``."""
    cache = filled_cache(model, batch, length, steps + 1)
    tok = torch.full((batch, 1), 5, dtype=torch.long)
    model(tok, cache=cache)  # warm-up
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        model(tok, cache=cache)
        best = min(best, time.perf_counter() - start)
    return best


def _integrate(xs: list[int], ys: list[float], lo: int, hi: int) -> float:
    """Sum of y over integer x in [lo, hi) by trapezoids on the measured points (linear in between)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        a, b = max(x0, lo), min(x1, hi)
        if a >= b:
            continue
        ya = y0 + (y1 - y0) * (a - x0) / (x1 - x0)
        yb = y0 + (y1 - y0) * (b - x0) / (x1 - x0)
        total += (ya + yb) / 2 * (b - a)
    return total


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=1024)
    parser.add_argument("--new", type=int, default=2048)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=5, help="timed decode steps per context length")
    parser.add_argument("--no-long", action="store_true", help="skip the 4k-24k context curve")
    parser.add_argument("--long-batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--end-to-end", action="store_true", help="also time the real generation at batch 1")
    parser.add_argument("--quick", action="store_true", help="short contexts (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompt, args.new, args.steps, args.batches = 128, 256, 2, [1]
    end = args.prompt + args.new
    contexts = sorted({256, 512, args.prompt, (args.prompt + end) // 2, end} - {0})
    contexts = [c for c in contexts if c <= end]

    hybrid = build(None)
    attn_pattern = equal_size_attention_pattern(hybrid)
    models = {"hybrid": hybrid, "attention-only": build(attn_pattern)}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    curves: dict = {}
    throughput: dict = {}
    rows, rows_long, long_ctx = [], [], []
    with torch.inference_mode(), dispatch.force_backend("torch"):
        for batch in args.batches:
            prompt = torch.randint(3, HYBRID["vocab_size"], (batch, args.prompt), generator=torch.Generator())
            tps = {}
            for name, model in models.items():
                ys = [step_time(model, batch, c, args.steps) for c in contexts]
                curves[f"{name} b={batch}"] = {"context": contexts, "seconds_per_step": ys}
                start = time.perf_counter()
                model(prompt, cache=model.new_cache(batch), logits_to_keep=1)
                prefill = time.perf_counter() - start
                total = prefill + _integrate(contexts, ys, args.prompt, end)
                tps[name] = batch * args.new / total
                throughput[f"{name} b={batch}"] = {"prefill_s": prefill, "total_s": total, "tok_per_s": tps[name]}
                rows.append([name, batch, params[name] / 1e6, prefill, *(y * 1e3 for y in ys), total, tps[name]])
            throughput[f"ratio b={batch}"] = tps["hybrid"] / tps["attention-only"]
        # The paper's own setting, 8k in / 16k out, decode phase only, batch 1 (a prefill of 8k tokens per model
        # would take minutes here): the curve out to 24k tokens, integrated over contexts 8192 .. 24575.
        long_ctx = [] if args.quick or args.no_long else [4096, 8192, 16384, 24576]
        for batch in args.long_batches if long_ctx else []:
            # Batch 8 at 24k holds ~2.2 GB of fp32 K/V for the attention-only model: the point of the comparison.
            long_tps = {}
            for name, model in models.items():
                ys = [step_time(model, batch, c, 2) for c in long_ctx]
                curves[f"{name} b={batch} long"] = {"context": long_ctx, "seconds_per_step": ys}
                long_tps[name] = batch * 16384 / _integrate(long_ctx, ys, 8192, 24576)
                rows_long.append([name, batch, *(y * 1e3 for y in ys), long_tps[name]])
            throughput[f"ratio 8k/16k decode b={batch}"] = long_tps["hybrid"] / long_tps["attention-only"]
    print_table(f"Hybrid vs attention-only, {args.prompt} in / {args.new} out (decode ms/step at each context)",
                ["model", "batch", "params M", "prefill s", *(f"@{c}" for c in contexts), "total s", "tok/s"], rows)
    for batch in args.batches:
        print(f"batch {batch}: hybrid / attention-only tokens/s = {throughput[f'ratio b={batch}']:.2f}")
    if rows_long:
        print_table("Long contexts (decode ms/step; tok/s over 16k tokens decoded from an 8k context)",
                    ["model", "batch", *(f"@{c}" for c in long_ctx), "tok/s"], rows_long)
        for batch in args.long_batches:
            print(f"8k in / 16k out, decode phase, batch {batch}: hybrid / attention-only = "
                  f"{throughput[f'ratio 8k/16k decode b={batch}']:.2f}")

    result = {"prompt": args.prompt, "new": args.new, "attention_only_pattern": attn_pattern, "params": params,
              "curves": curves, "throughput": throughput,
              "summary": {f"hybrid x @b{b}": throughput[f"ratio b={b}"] for b in args.batches}}
    for batch in args.long_batches if rows_long else []:
        result["summary"][f"hybrid x 8k/16k decode-only @b{batch}"] = throughput[f"ratio 8k/16k decode b={batch}"]
    if args.end_to_end:
        from zoo.generate import generate

        e2e = {}
        with torch.inference_mode(), dispatch.force_backend("torch"):
            prompt = torch.randint(3, HYBRID["vocab_size"], (1, args.prompt), generator=torch.Generator())
            for name, model in models.items():
                start = time.perf_counter()
                generate(model, prompt, max_new_tokens=args.new, eos_token_id=[])
                e2e[name] = args.new / (time.perf_counter() - start)
        e2e["ratio"] = e2e["hybrid"] / e2e["attention-only"]
        print(f"end to end, batch 1: {e2e}")
        result["end_to_end_b1_tok_per_s"] = e2e
    write_json("hybrid_vs_transformer", result)
    # One line per (model, batch): the 256-3k points and the 4k-24k points join into one curve.
    merged: dict[str, dict[int, float]] = {}
    for key, curve in curves.items():
        points = merged.setdefault(key.removesuffix(" long"), {})
        points.update({c: y * 1e3 for c, y in zip(curve["context"], curve["seconds_per_step"])})
    plot_lines("hybrid_vs_transformer", "Decode time per token vs context (CPU fp32)", "context (tokens)",
               "ms per step", {k: (sorted(v), [v[c] for c in sorted(v)]) for k, v in merged.items()})
    return result


if __name__ == "__main__":
    main()
