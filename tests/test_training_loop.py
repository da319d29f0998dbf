"""The shared loop: loss goes down, kill-and-resume equals an uninterrupted run, checkpoints are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.training import checkpoint as ckpt
from zoo.training.config import OptimConfig, ScheduleConfig, load_recipe
from zoo.training.loop import read_metrics
from zoo.training.optim import lr_at
from zoo.training.pretrain import pretrain

SAMPLES = Path(__file__).resolve().parents[1] / "zoo" / "training" / "recipes" / "_samples"

RECIPE = """\
stage: pretrain
model:
  entry: nano-9b-v2
  tiny: true
  hf_config:
    architectures: [NemotronHForCausalLM]
    model_type: nemotron_h
    vocab_size: 512
    hidden_size: 32
    hybrid_override_pattern: "M*-M-"
    num_hidden_layers: 5
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
    use_conv_bias: true
    layer_norm_epsilon: 1.0e-5
    max_position_embeddings: 512
    tie_word_embeddings: false
    pad_token_id: 0
    bos_token_id: 1
    eos_token_id: 5
  tokenizer: TOKDIR
data:
  sources:
    - {name: a, path: SAMPLES/text.jsonl}
  seq_len: 64
optim: {lr: 3.0e-3, min_lr: 3.0e-5}
schedule: {kind: wsd, warmup_steps: 2, decay_fraction: 0.3}
fp8: {enabled: FP8, bf16_first: 1, bf16_last: 1, emulate: true}
train:
  steps: 8
  micro_batch_size: 2
  grad_accum: 2
  precision: fp32
  out_dir: OUT
  log_every: 1
  ckpt_every: 3
  keep_checkpoints: 2
"""


@pytest.fixture(scope="module")
def tokdir(tmp_path_factory) -> str:
    from zoo.tokenizers import tiny_tokenizer

    d = tmp_path_factory.mktemp("tok")
    tiny_tokenizer("nemotron-v2").save_pretrained(str(d))
    return str(d)


def _cfg(tmp_path: Path, tokdir: str, out: str, fp8: bool = False, steps: int = 8):
    p = tmp_path / "r.yaml"
    p.write_text(RECIPE.replace("TOKDIR", tokdir).replace("SAMPLES", str(SAMPLES)).replace("OUT", str(tmp_path / out))
                 .replace("FP8", "true" if fp8 else "false"))
    return load_recipe(p, overrides={"train.steps": steps})


def test_schedules():
    o = OptimConfig(lr=1.0, min_lr=0.01)
    wsd = [lr_at(i, 10, o, ScheduleConfig("wsd", warmup_steps=2, decay_fraction=0.4)) for i in range(10)]
    assert wsd[:2] == [0.5, 1.0] and wsd[2:6] == [1.0] * 4 and wsd[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(wsd[5:], wsd[6:]))
    cos = [lr_at(i, 10, o, ScheduleConfig("cosine", warmup_steps=1)) for i in range(11)]
    assert cos[1] == 1.0 and cos[10] == pytest.approx(0.01) and all(a >= b for a, b in zip(cos[1:], cos[2:]))


def test_loss_goes_down_and_export_loads(tmp_path, tokdir):
    import zoo

    cfg = _cfg(tmp_path, tokdir, "run", steps=30)
    cfg.train.ckpt_every = 0
    res = pretrain(cfg)
    losses = [m["loss"] for m in res.history]
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:3]) / 3, losses
    m = zoo.load(str(tmp_path / "run" / "final"))
    assert m.tokenizer is not None and m.config.pattern == "M*-M-"
    rec = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rec] == list(range(1, 31)) and {"loss", "lr", "grad_norm", "tokens"} <= set(rec[0])


@pytest.mark.parametrize("fp8", [False, True])
def test_kill_and_resume_equals_uninterrupted(tmp_path, tokdir, fp8):
    ref = pretrain(_cfg(tmp_path, tokdir, "ref", fp8=fp8))
    # "Kill" after step 5: the newest checkpoint is step 3, so the resumed run replays steps 4.. from it.
    pretrain(_cfg(tmp_path, tokdir, "cut", fp8=fp8), stop_after=5)
    (tmp_path / "cut" / "checkpoints" / "step_00000005").rename(tmp_path / "cut" / "checkpoints" / ".tmp-killed")
    resumed = pretrain(_cfg(tmp_path, tokdir, "cut", fp8=fp8), resume=True)
    assert [m["step"] for m in resumed.history] == [4, 5, 6, 7, 8]
    a = {m["step"]: m["loss"] for m in ref.history}
    b = {m["step"]: m["loss"] for m in resumed.history}
    for s in b:
        assert a[s] == b[s], (s, a[s], b[s])  # bit-identical on CPU in fp32
    from safetensors.torch import load_file

    fa = load_file(str(tmp_path / "ref" / "checkpoints" / "step_00000008" / "model.safetensors"))
    fb = load_file(str(tmp_path / "cut" / "checkpoints" / "step_00000008" / "model.safetensors"))
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_checkpoint_layout_and_pruning(tmp_path, tokdir):
    pretrain(_cfg(tmp_path, tokdir, "run"))
    cks = ckpt.list_checkpoints(tmp_path / "run")
    assert [c.name for c in cks] == ["step_00000006", "step_00000008"]  # keep_checkpoints: 2
    c = cks[-1]
    assert {p.name for p in c.iterdir()} == {"model.safetensors", "optimizer.pt", "rng.safetensors", "state.json"}
    state = json.loads((c / "state.json").read_text())
    assert state["step"] == 8 and state["data"]["sampler"]["tokens"] > 0
    # optimizer state loads with weights_only (no pickled code).
    osd = torch.load(c / "optimizer.pt", weights_only=True)
    assert len(osd["state"]) > 0
    # A leftover temp dir from a killed save is ignored.
    (tmp_path / "run" / "checkpoints" / ".tmp-step_00000010-1").mkdir()
    assert ckpt.latest_checkpoint(tmp_path / "run") == c


def test_missing_checkpoint_piece_is_named(tmp_path, tokdir):
    from zoo.errors import CheckpointError

    pretrain(_cfg(tmp_path, tokdir, "run", steps=3))
    c = ckpt.latest_checkpoint(tmp_path / "run")
    (c / "rng.safetensors").unlink()
    with pytest.raises(CheckpointError, match="rng.safetensors"):
        pretrain(_cfg(tmp_path, tokdir, "run", steps=4), resume=True)
