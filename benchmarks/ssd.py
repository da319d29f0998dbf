"""SSD scan: zoo's chunked scan vs the naive recurrence vs transformers' torch fallback, at several lengths.

Run: ``python -m benchmarks.ssd [--lengths 256 512 1024 2048] [--quick]``. Prints a table of milliseconds per scan
(batch 1, Nano-v2-like head layout scaled down), the ratios, and the one-step decode update; writes
``results/ssd.json`` and ``results/ssd.png``.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks._common import best_time, plot_lines, print_table, quiet_transformers, write_json
from zoo.kernels import dispatch
from zoo.kernels.ssd import ssd_ref, ssd_scan, ssd_step

# Heads, head dim, groups, state, chunk: Nano-v2 uses 128 x 64, 8 groups, state 128, chunk 128; we keep the
# per-head shape and chunk and cut the head count so a CPU run takes seconds.
SHAPE = {"heads": 16, "head_dim": 64, "groups": 4, "state": 64, "chunk": 128}


def _inputs(batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    h, p, g, n = SHAPE["heads"], SHAPE["head_dim"], SHAPE["groups"], SHAPE["state"]
    return {
        "x": torch.randn(batch, length, h, p, generator=gen),
        "dt": torch.rand(batch, length, h, generator=gen) * 0.1 + 1e-3,
        "A": -torch.rand(h, generator=gen) - 0.5,
        "B": torch.randn(batch, length, g, n, generator=gen),
        "C": torch.randn(batch, length, g, n, generator=gen),
        "D": torch.randn(h, generator=gen),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--naive-max", type=int, default=2048, help="skip the (slow) naive recurrence above this")
    parser.add_argument("--quick", action="store_true", help="two short lengths, one repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths = [128, 256]
    repeats = 1 if args.quick else 3
    quiet_transformers()
    from transformers.models.nemotron_h import modeling_nemotron_h as hf

    rows, records = [], []
    with torch.inference_mode(), dispatch.force_backend("torch"):
        for length in args.lengths:
            t = _inputs(1, length)
            zoo_s = best_time(lambda t=t: ssd_scan(**t, chunk_size=SHAPE["chunk"]), repeats=repeats)
            hf_s = best_time(lambda t=t: hf.mamba2_chunk_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], SHAPE["chunk"],
                                                              D=t["D"], return_final_states=True), repeats=repeats)
            naive_s = (best_time(lambda t=t: ssd_ref(**t), repeats=1, warmup=0)
                       if length <= args.naive_max else float("nan"))
            y, _ = ssd_scan(**t, chunk_size=SHAPE["chunk"])
            y_hf, _ = hf.mamba2_chunk_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], SHAPE["chunk"], D=t["D"],
                                           return_final_states=True)
            err = (y - y_hf).abs().max().item()
            rows.append([length, zoo_s * 1e3, hf_s * 1e3, naive_s * 1e3, hf_s / zoo_s, naive_s / zoo_s, err])
            records.append({"length": length, "zoo_ms": zoo_s * 1e3, "transformers_ms": hf_s * 1e3,
                            "naive_ms": naive_s * 1e3, "speedup_vs_transformers": hf_s / zoo_s,
                            "speedup_vs_naive": naive_s / zoo_s, "max_abs_diff_vs_transformers": err})
        print_table(f"SSD chunked scan, batch 1, {SHAPE} (ms, best of {repeats})",
                    ["length", "zoo", "transformers", "naive", "x vs hf", "x vs naive", "max|diff|"], rows)

        # One decode step (the state update), batch 1 and 8.
        step_rows, step_records = [], []
        h, p, g, n = SHAPE["heads"], SHAPE["head_dim"], SHAPE["groups"], SHAPE["state"]
        for batch in (1, 8):
            gen = torch.Generator().manual_seed(1)
            state = torch.zeros(batch, h, p, n)
            x, dt = torch.randn(batch, h, p, generator=gen), torch.rand(batch, h, generator=gen) * 0.1
            A, D = -torch.rand(h, generator=gen), torch.randn(h, generator=gen)
            B, C = torch.randn(batch, g, n, generator=gen), torch.randn(batch, g, n, generator=gen)
            steps = 20 if args.quick else 200

            def zoo_steps(state=state, x=x, dt=dt, A=A, B=B, C=C, D=D, steps=steps) -> None:
                for _ in range(steps):
                    ssd_step(state, x, dt, A, B, C, D)

            def hf_steps(state=state, x=x, dt=dt, A=A, B=B, C=C, D=D, steps=steps, batch=batch) -> None:
                dt_e, A_e, D_e = dt[..., None].expand(batch, h, p), A[:, None, None].expand(h, p, n), D[:, None]
                for _ in range(steps):
                    hf.mamba2_selective_state_update(state, x, dt_e, A_e, B, C, D=D_e)

            zs = best_time(zoo_steps, repeats=repeats) / steps
            hs = best_time(hf_steps, repeats=repeats) / steps
            step_rows.append([batch, zs * 1e6, hs * 1e6, hs / zs])
            step_records.append({"batch": batch, "zoo_us": zs * 1e6, "transformers_us": hs * 1e6, "speedup": hs / zs})
        print_table("SSD decode step (us per step)", ["batch", "zoo", "transformers", "x vs hf"], step_rows)

    summary = {f"scan x vs transformers @{records[-1]['length']}": records[-1]["speedup_vs_transformers"],
               "step x vs transformers @b1": step_records[0]["speedup"]}
    payload = {"shape": SHAPE, "scan": records, "step": step_records, "summary": summary}
    write_json("ssd", payload)
    lengths = [r["length"] for r in records]
    series = {"zoo chunked": (lengths, [r["zoo_ms"] for r in records]),
              "transformers fallback": (lengths, [r["transformers_ms"] for r in records])}
    if any(r["naive_ms"] == r["naive_ms"] for r in records):
        series["naive recurrence"] = (lengths, [r["naive_ms"] for r in records])
    plot_lines("ssd", "SSD scan time vs length (CPU, batch 1)", "length (tokens)", "ms per scan", series, logy=True)
    return payload


if __name__ == "__main__":
    main()
