"""FSDP2: 2 CPU ranks (gloo, torchrun) train with the same losses as one process, and export the same model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.training.loop import read_metrics

ROOT = Path(__file__).resolve().parents[1]

RECIPE = """\
stage: pretrain
model:
  hf_config:
    architectures: [NemotronHForCausalLM]
    model_type: nemotron_h
    vocab_size: 512
    hidden_size: 32
    hybrid_override_pattern: "M*-"
    num_hidden_layers: 3
    num_attention_heads: 2
    num_key_value_heads: 1
    head_dim: 16
    intermediate_size: 64
    mlp_hidden_act: relu2
    mamba_num_heads: 2
    mamba_head_dim: 16
    ssm_state_size: 8
    n_groups: 1
    conv_kernel: 4
    chunk_size: 16
    max_position_embeddings: 512
    pad_token_id: 0
    bos_token_id: 1
    eos_token_id: 5
  tokenizer: TOKDIR
data:
  sources:
    - {name: a, path: SAMPLES/text.jsonl}
  seq_len: 64
optim: {lr: 3.0e-3, min_lr: 3.0e-5}
schedule: {kind: wsd, warmup_steps: 1}
train:
  steps: 4
  micro_batch_size: 1
  grad_accum: ACCUM
  precision: fp32
  out_dir: OUT
  log_every: 1
  ckpt_every: 2
  fsdp: true
  num_threads: 1
"""

SCRIPT = """\
import sys
from zoo.training.config import load_recipe
from zoo.training.pretrain import pretrain
from zoo.training import distributed
pretrain(load_recipe(sys.argv[1]), resume=len(sys.argv) > 2)
distributed.teardown()
"""


def _recipe(tmp_path: Path, tokdir: str, name: str, accum: int) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(RECIPE.replace("TOKDIR", tokdir).replace("ACCUM", str(accum)).replace("OUT", str(tmp_path / name))
                 .replace("SAMPLES", str(ROOT / "zoo/training/recipes/_samples")))
    return p


@pytest.mark.timeout(300)
def test_fsdp2_two_ranks_match_one_process(tmp_path):
    import zoo
    from zoo.tokenizers import tiny_tokenizer

    tokdir = tmp_path / "tok"
    tiny_tokenizer("nemotron-v2").save_pretrained(str(tokdir))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # One process: 2 micro-batches of 1 row. Two ranks: 1 row each. Same global batch of 2 rows.
    one = _recipe(tmp_path, str(tokdir), "one", accum=2)
    subprocess.run([sys.executable, str(script), str(one)], check=True, env=env, cwd=tmp_path, timeout=240)
    two = _recipe(tmp_path, str(tokdir), "two", accum=1)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script), str(two)], env=env, cwd=tmp_path, timeout=240, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "world 2" in run.stderr
    a = [r["loss"] for r in read_metrics(tmp_path / "one" / "metrics.jsonl")]
    b = [r["loss"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl")]
    assert len(a) == len(b) == 4
    print("1 process:", a, "\n2 ranks:  ", b)
    # Same math, different reduction order (gloo reduce-scatter vs local accumulation): fp32 rounding only.
    assert a == pytest.approx(b, rel=1e-5)
    # The gathered FSDP export equals the single-process model.
    ma, mb = zoo.load(str(tmp_path / "one" / "final")), zoo.load(str(tmp_path / "two" / "final"))
    for (ka, pa), (kb, pb) in zip(ma.named_parameters(), mb.named_parameters()):
        assert ka == kb and torch.allclose(pa, pb, rtol=1e-4, atol=1e-6), ka
