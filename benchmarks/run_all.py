"""Run every benchmark: ``python -m benchmarks.run_all [--quick] [--only NAME ...]`` (what ``make bench`` runs).

A benchmark is any ``benchmarks/<name>.py`` (not starting with ``_``) that defines ``main(argv=None)``; ours run first
in a fixed order, then any others alphabetically. Each prints its own table and writes ``results/<name>.json``; this
runner prints the wall time of each and a final summary of the headline ratios. It exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import time
import traceback
from pathlib import Path

import torch

ORDER = ["ssd", "memory", "generation", "hybrid_vs_transformer"]
# Benchmarks that accept --quick (a short smoke run); others are called with no arguments.
QUICK_AWARE = set(ORDER)


def discover() -> list[str]:
    """Names of the benchmark modules in this folder, ours first."""
    here = Path(__file__).resolve().parent
    names = [p.stem for p in here.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"]
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


def _headline(name: str, result: object) -> list[str]:
    """The one-line ratios a benchmark reports in its ``summary`` entry, if it returned one."""
    if isinstance(result, dict) and isinstance(result.get("summary"), dict):
        return [f"{name}: {k} = {v:.2f}" if isinstance(v, float) else f"{name}: {k} = {v}"
                for k, v in result["summary"].items()]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (seconds, not minutes)")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: OMP_NUM_THREADS if set, else 1)")
    args = parser.parse_args(argv)
    # One thread unless asked: the ratios are what the benchmarks report, and on a machine shared with other jobs
    # more threads than free cores make every op wait at OpenMP barriers (measured 20-40x slower decode on the
    # loaded 2-core VM), which would also break the 10-minute budget of `make bench`.
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)

    names = args.only or discover()
    failed, summary, start = [], [], time.perf_counter()
    for name in names:
        print(f"\n===== {name} =====", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            entry = getattr(module, "main", None)
            if entry is None or not inspect.isfunction(entry):
                print(f"skip: benchmarks/{name}.py has no main()")
                continue
            result = entry(["--quick"] if args.quick and name in QUICK_AWARE else [])
            summary += _headline(name, result)
        except (Exception, SystemExit) as exc:  # one broken benchmark must not hide the others' numbers
            if isinstance(exc, SystemExit) and not exc.code:
                continue
            traceback.print_exc()
            failed.append(name)
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", flush=True)

    print(f"\n===== summary ({time.perf_counter() - start:.0f} s, {torch.get_num_threads()} threads) =====")
    for line in summary:
        print(line)
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
