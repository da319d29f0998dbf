"""Shared helpers for the benchmarks: timing, tables, JSON/PNG results, run metadata.

Timing takes the best of several repeats after a warm-up: on a shared machine the minimum is the least noisy estimate
of what the code costs (other processes only ever add time).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> float:
    """Seconds taken by the fastest of ``repeats`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def environment() -> dict[str, Any]:
    """What the numbers depend on: versions, threads, CPU."""
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain fixed-width table (floats to 3 significant digits)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)

    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` atomically (temp file + rename) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmark": name, "environment": environment(), **payload}, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return path


def plot_lines(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list[float], list[float]]],
               *, logy: bool = False) -> Path | None:
    """Save ``results/<name>.png`` with one line per series; None (and a note) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return path


def quiet_transformers() -> None:
    """Silence transformers' per-call 'falling back to PyTorch' notices so tables stay readable."""
    import transformers

    transformers.logging.set_verbosity_error()
