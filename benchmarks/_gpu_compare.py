"""CUDA comparisons for ``benchmarks/gpu.sh``: kernels (SSD scan/step, conv, attention) with one backend forced.

Run: ``python -m benchmarks._gpu_compare --backend auto|torch`` on a CUDA machine (bf16 activations, fp32 state).
Not discovered by ``run_all`` (leading underscore): it needs a GPU.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks._common import print_table, write_json
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["auto", "torch"], default="auto")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("_gpu_compare: needs CUDA")
    dev, bf = "cuda", torch.bfloat16
    # Nano-9B-v2 mixer shapes: 128 heads x 64, 8 groups, state 128, conv width 4, chunk 128.
    h, p, g, n, k, chunk = 128, 64, 8, 128, 4, 128
    rows, records = [], []
    with torch.inference_mode(), dispatch.force_backend(args.backend):
        for length in (2048, 8192):
            x = torch.randn(1, length, h, p, device=dev, dtype=bf)
            dt = torch.rand(1, length, h, device=dev) * 0.1
            A = -torch.rand(h, device=dev)
            B = torch.randn(1, length, g, n, device=dev, dtype=bf)
            C = torch.randn(1, length, g, n, device=dev, dtype=bf)
            ms = _cuda_time(lambda x=x, dt=dt, A=A, B=B, C=C: ssd_scan(x, dt, A, B, C, chunk_size=chunk))
            rows.append([f"ssd_scan l={length}", ms])
            conv_x = torch.randn(1, h * p + 2 * g * n, length, device=dev, dtype=bf)
            w = torch.randn(h * p + 2 * g * n, k, device=dev, dtype=bf)
            rows.append([f"causal_conv1d l={length}", _cuda_time(lambda cx=conv_x, w=w: causal_conv1d(cx, w))])
            q = torch.randn(1, 40, length, 128, device=dev, dtype=bf)
            kv = torch.randn(1, 8, length, 128, device=dev, dtype=bf)
            rows.append([f"attention l={length}", _cuda_time(lambda q=q, kv=kv: attention(q, kv, kv, causal=True))])
        for batch in (1, 8):
            state = torch.zeros(batch, h, p, n, device=dev)
            xs = torch.randn(batch, h, p, device=dev, dtype=bf)
            dts = torch.rand(batch, h, device=dev) * 0.1
            Bs = torch.randn(batch, g, n, device=dev, dtype=bf)
            A = -torch.rand(h, device=dev)
            rows.append([f"ssd_step b={batch}", _cuda_time(lambda s=state, x=xs, d=dts, a=A, B=Bs: ssd_step(s, x, d, a, B, B))])
            cs = torch.zeros(batch, h * p + 2 * g * n, k, device=dev, dtype=bf)
            cx = torch.randn(batch, h * p + 2 * g * n, device=dev, dtype=bf)
            w = torch.randn(h * p + 2 * g * n, k, device=dev, dtype=bf)
            rows.append([f"conv_step b={batch}", _cuda_time(lambda c=cs, x=cx, w=w: causal_conv1d_step(x, c, w))])
    records = [{"op": r[0], "ms": r[1]} for r in rows]
    print_table(f"CUDA kernels, backend={args.backend} (ms per call)", ["op", "ms"], rows)
    payload = {"backend": args.backend, "kernels": records}
    write_json(f"gpu_{args.backend}", payload)
    return payload


if __name__ == "__main__":
    main()
