"""The example scripts run end to end at tiny scale (as a user would launch them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.parametrize("lora", [True])  # full fine-tuning runs in test_training_loop / recipes smoke
def test_finetune_sft_example(tmp_path, lora):
    import zoo

    out = _run([str(ROOT / "examples/finetune_sft.py"), "--model", "nano-9b-v2", "--tiny", "--steps", "3",
                "--batch", "2", "--out", str(tmp_path / "ft")] + (["--lora"] if lora else []), tmp_path)
    assert "over 3 steps" in out
    m = zoo.load(str(tmp_path / "ft" / "final"))
    assert m.tokenizer is not None and not any("lora" in n for n, _ in m.named_parameters())


def test_continue_pretraining_example_with_fp8_and_resume(tmp_path):
    args = [str(ROOT / "examples/continue_pretraining.py"), "--model", "nano-9b-v2", "--tiny", "--fp8", "--batch", "2",
            "--seq-len", "64", "--out", str(tmp_path / "cp")]
    out = _run(args + ["--steps", "4"], tmp_path)
    assert "over 4 steps" in out and (tmp_path / "cp" / "final" / "config.json").is_file()
    # More steps with --resume continue from the step-4 checkpoint instead of starting over.
    _run(args + ["--steps", "6", "--resume"], tmp_path)
    steps = [line for line in (tmp_path / "cp" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(steps) == 6
