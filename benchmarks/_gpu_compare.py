"""CUDA comparisons for ``benchmarks/gpu.sh``, with one kernel backend forced (``auto`` or ``torch``).

1. Kernels at Nano-9B-v2 mixer shapes: SSD scan and step, causal conv and its step, attention (bf16 activations,
   fp32 state).
2. Models: zoo vs transformers on the same NemotronH weights (``benchmarks._models``, scaled up 4x in width),
   bf16: prefill of 2048 tokens and decode at batch 1 and 8 with a bare ``model(...)`` loop on each side.

Run: ``python -m benchmarks._gpu_compare --backend auto|torch`` on a CUDA machine; ``--device cpu --quick`` checks
the script itself without a GPU. Not discovered by ``run_all`` (leading underscore).
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks._common import print_table, write_json
from benchmarks._models import HYBRID, build_pair
from zoo.kernels import dispatch
from zoo.kernels.attention import attention
from zoo.kernels.conv import causal_conv1d, causal_conv1d_step
from zoo.kernels.ssd import ssd_scan, ssd_step


def _cuda_time(fn, repeats: int = 10) -> float:
    """Milliseconds per call, measured with CUDA events after a warm-up."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _wall(fn, device: str, repeats: int = 3) -> float:
    """Best wall-clock seconds of ``fn`` (synchronising the GPU around it)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def model_comparison(backend: str, device: str, quick: bool) -> list[dict]:
    """zoo vs transformers, same weights, bf16 on ``device``: prefill tok/s and decode tok/s (bare loops)."""
    from benchmarks.generation import _hf_loop, _zoo_loop

    wide = {} if quick else {"hidden_size": 2048, "intermediate_size": 6144, "mamba_num_heads": 64,
                             "num_attention_heads": 16, "num_key_value_heads": 4, "head_dim": 128}
    hf, ours = build_pair(wide)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    hf, ours = hf.to(device, dtype), ours.to(device, dtype)
    prefill_len, prompt_len, new = (128, 16, 4) if quick else (2048, 128, 64)
    records = []
    with torch.inference_mode(), dispatch.force_backend(backend):
        from transformers import DynamicCache

        ids = torch.randint(3, HYBRID["vocab_size"], (1, prefill_len), device=device)
        t_hf = _wall(lambda: hf(ids, past_key_values=DynamicCache(config=hf.config), use_cache=True,
                                logits_to_keep=1), device)
        t_zoo = _wall(lambda: ours(ids, cache=ours.new_cache(1), logits_to_keep=1), device)
        records.append({"what": f"prefill {prefill_len} b=1", "transformers": prefill_len / t_hf,
                        "zoo": prefill_len / t_zoo, "ratio": t_hf / t_zoo})
        for batch in (1, 8):
            prompt = torch.randint(3, HYBRID["vocab_size"], (batch, prompt_len), device=device)
            t = {name: _wall(lambda f=f, p=prompt: f(p, new), device) - _wall(lambda f=f, p=prompt: f(p, 1), device)
                 for name, f in (("transformers", lambda p, n: _hf_loop(hf, p, n)),
                                 ("zoo", lambda p, n: _zoo_loop(ours, p, n)))}
            tps = {k: batch * (new - 1) / max(v, 1e-9) for k, v in t.items()}
            records.append({"what": f"decode b={batch}", **tps, "ratio": tps["zoo"] / tps["transformers"]})
    print_table(f"Models on {device}, kernels={backend} (tokens/s; transformers uses its own kernel choice)",
                ["", "transformers", "zoo", "x"], [[r["what"], r["transformers"], r["zoo"], r["ratio"]]
                                                   for r in records])
    return records


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["auto", "torch"], default="auto")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to check the script without a GPU")
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("_gpu_compare: needs CUDA (or pass --device cpu --quick to check the script)")
    dev = args.device
    bf = torch.bfloat16 if dev == "cuda" else torch.float32
    # Nano-9B-v2 mixer shapes: 128 heads x 64, 8 groups, state 128, conv width 4, chunk 128.
    h, p, g, n, k, chunk = (8, 16, 2, 16, 4, 16) if args.quick else (128, 64, 8, 128, 4, 128)
    timer = _cuda_time if dev == "cuda" else (lambda fn, repeats=3: _wall(fn, dev, repeats) * 1e3)
    rows, records = [], []
    with torch.inference_mode(), dispatch.force_backend(args.backend):
        for length in (64,) if args.quick else (2048, 8192):
            x = torch.randn(1, length, h, p, device=dev, dtype=bf)
            dt = torch.rand(1, length, h, device=dev) * 0.1
            A = -torch.rand(h, device=dev)
            B = torch.randn(1, length, g, n, device=dev, dtype=bf)
            C = torch.randn(1, length, g, n, device=dev, dtype=bf)
            ms = timer(lambda x=x, dt=dt, A=A, B=B, C=C: ssd_scan(x, dt, A, B, C, chunk_size=chunk))
            rows.append([f"ssd_scan l={length}", ms])
            conv_x = torch.randn(1, h * p + 2 * g * n, length, device=dev, dtype=bf)
            w = torch.randn(h * p + 2 * g * n, k, device=dev, dtype=bf)
            rows.append([f"causal_conv1d l={length}", timer(lambda cx=conv_x, w=w: causal_conv1d(cx, w))])
            q = torch.randn(1, 40, length, 128, device=dev, dtype=bf)
            kv = torch.randn(1, 8, length, 128, device=dev, dtype=bf)
            rows.append([f"attention l={length}", timer(lambda q=q, kv=kv: attention(q, kv, kv, causal=True))])
        for batch in (1, 8):
            state = torch.zeros(batch, h, p, n, device=dev)
            xs = torch.randn(batch, h, p, device=dev, dtype=bf)
            dts = torch.rand(batch, h, device=dev) * 0.1
            Bs = torch.randn(batch, g, n, device=dev, dtype=bf)
            A = -torch.rand(h, device=dev)
            step = lambda s=state, x=xs, d=dts, a=A, B=Bs: ssd_step(s, x, d, a, B, B)  # noqa: E731
            rows.append([f"ssd_step b={batch}", timer(step)])
            cs = torch.zeros(batch, h * p + 2 * g * n, k, device=dev, dtype=bf)
            cx = torch.randn(batch, h * p + 2 * g * n, device=dev, dtype=bf)
            w = torch.randn(h * p + 2 * g * n, k, device=dev, dtype=bf)
            rows.append([f"conv_step b={batch}", timer(lambda c=cs, x=cx, w=w: causal_conv1d_step(x, c, w))])
    records = [{"op": r[0], "ms": r[1]} for r in rows]
    print_table(f"Kernels on {dev}, backend={args.backend} (ms per call)", ["op", "ms"], rows)
    payload = {"backend": args.backend, "device": dev, "kernels": records,
               "models": model_comparison(args.backend, dev, args.quick)}
    if dev == "cuda":
        write_json(f"gpu_{args.backend}", payload)
    return payload


if __name__ == "__main__":
    main()
