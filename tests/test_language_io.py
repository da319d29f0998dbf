"""Checkpoint I/O: configs both ways, sharding, atomic saves, and a clear error for every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo.errors import CheckpointError, ConfigError, OfflineError, UnknownModelError
from zoo.language.config import LMConfig


@pytest.fixture
def saved(tmp_path):
    m = zoo.load("nano-9b-v2", tiny=True)
    path = tmp_path / "ckpt"
    m.save_pretrained(path, dtype="float32")
    return m, path


@pytest.mark.parametrize("name", [n for n in zoo.list_models() if zoo.get_entry(n).family != "eagle_2_5_vl"
                                  and zoo.get_entry(n).family != "qwen2_audio"])
def test_config_round_trip(name):
    e = zoo.get_entry(name)
    for hf in (e.config, e.tiny):
        cfg = LMConfig.from_hf(hf)
        assert LMConfig.from_hf(cfg.to_hf()) == cfg


def test_nemotron_h_list_form_and_legacy_names():
    e = zoo.get_entry("nano-9b-v2").config
    types = {"M": "mamba", "*": "attention", "-": "mlp"}
    legacy = {k: v for k, v in e.items() if k not in ("hybrid_override_pattern", "n_groups", "conv_kernel")}
    legacy["layers_block_type"] = [types[c] for c in e["hybrid_override_pattern"]]
    legacy["mamba_n_groups"], legacy["mamba_d_conv"] = 8, 4
    a, b = LMConfig.from_hf(e), LMConfig.from_hf(legacy)
    assert a == b and b.pattern == e["hybrid_override_pattern"]
    modern = dict(legacy, layers_block_type=[{"mamba": "linear_attention", "attention": "full_attention"}.get(t, t)
                                             for t in legacy["layers_block_type"]])
    assert LMConfig.from_hf(modern) == a


def test_nano_9b_v2_counts():
    cfg = LMConfig.from_hf(zoo.get_entry("nano-9b-v2").config)
    assert (cfg.pattern.count("M"), cfg.pattern.count("-"), cfg.pattern.count("*")) == (27, 25, 4)
    assert cfg.conv_dim == 12288 and cfg.d_inner + cfg.conv_dim + cfg.mamba_num_heads == 22656


def test_sharded_save_and_load(tmp_path):
    m = zoo.load("nano-9b-v2", tiny=True)
    m.save_pretrained(tmp_path / "s", max_shard_size=200_000, dtype="float32")
    files = sorted(p.name for p in (tmp_path / "s").glob("*.safetensors"))
    assert len(files) > 2 and (tmp_path / "s" / "model.safetensors.index.json").exists()
    back = zoo.load(tmp_path / "s")
    ids = torch.randint(0, 500, (1, 10))
    with torch.no_grad():
        assert torch.equal(back(ids).logits, m(ids).logits)
    keys = set(json.loads((tmp_path / "s" / "model.safetensors.index.json").read_text())["weight_map"])
    assert "backbone.layers.0.mixer.in_proj.weight" in keys and "lm_head.weight" in keys


def test_bf16_save_keeps_upstream_keys(saved, tmp_path):
    m, _ = saved
    m.save_pretrained(tmp_path / "b", dtype="bfloat16")
    sd = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(t.dtype == torch.bfloat16 for t in sd.values())
    assert "backbone.layers.14.mixer.q_proj.weight" in sd  # fused qkv is split back on save
    assert json.loads((tmp_path / "b" / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_atomic_save_leaves_old_checkpoint_on_failure(saved, monkeypatch):
    m, path = saved
    before = sorted(os.listdir(path))
    import zoo.hub as hub

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(hub, "write_safetensors", boom)
    with pytest.raises(RuntimeError):
        m.save_pretrained(path)
    assert sorted(os.listdir(path)) == before
    assert not [p for p in os.listdir(path.parent) if p.startswith(".ckpt.tmp")]


def _rewrite(path, fn):
    f = path / "model.safetensors"
    sd = load_file(str(f))
    fn(sd)
    save_file(sd, str(f))


def test_missing_and_unexpected_keys_are_listed(saved):
    _, path = saved
    _rewrite(path, lambda sd: (sd.pop("backbone.layers.0.mixer.A_log"), sd.__setitem__("extra.weight",
                                                                                       torch.zeros(1))))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): backbone.layers.0.mixer.A_log.*"
                                              r"unexpected keys \(1\): extra.weight"):
        zoo.load(path)


def test_shape_mismatch_names_key(saved):
    _, path = saved
    _rewrite(path, lambda sd: sd.__setitem__("backbone.norm_f.weight", torch.zeros(65)))
    with pytest.raises(CheckpointError, match=r"shape mismatch for 'backbone.norm_f.weight': expected \[64\], "
                                              r"found \[65\]"):
        zoo.load(path)


def test_truncated_and_corrupt_safetensors(saved):
    _, path = saved
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated safetensors file"):
        zoo.load(path)
    f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        zoo.load(path)
    f.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        zoo.load(path)


def test_missing_shard_in_index(tmp_path):
    m = zoo.load("nano-9b-v2", tiny=True)
    m.save_pretrained(tmp_path / "s", max_shard_size=200_000)
    os.remove(next((tmp_path / "s").glob("model-00002-*.safetensors")))
    with pytest.raises(CheckpointError, match="shard model-00002-of-.* is missing"):
        zoo.load(tmp_path / "s")


def test_unknown_model_type_and_bad_config(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(dict(cfg, model_type="gpt_neo_x9")))
    with pytest.raises(ConfigError, match=r"config.json: unknown model_type 'gpt_neo_x9'"):
        zoo.load(path)
    (path / "config.json").write_text("{broken")
    with pytest.raises(ConfigError, match=r"config.json: invalid JSON"):
        zoo.load(path)
    (path / "config.json").write_text(json.dumps(dict(cfg, hybrid_override_pattern="M-E*")))
    with pytest.raises(ConfigError, match="unsupported characters"):
        zoo.load(path)


def test_unknown_name_suggests_entries():
    with pytest.raises(UnknownModelError, match="did you mean 'nano-9b-v2'"):
        zoo.load("nano-9b-v3")


def test_offline_without_cache_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(OfflineError, match=r"not in the Hugging Face cache.*tiny=True"):
        zoo.load("nemotron-h-8b-base")


def test_offline_loads_from_cache(tmp_path, monkeypatch, saved):
    """An entry whose snapshot is in the HF cache loads offline (the cache layout is built by hand)."""
    _, path = saved
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    repo = cache / "models--nvidia--Nemotron-H-8B-Base-8K"
    snap = repo / "snapshots" / ("a" * 40)
    shutil.copytree(path, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    m = zoo.load("nemotron-h-8b-base")
    assert m.config.family == "nemotron_h" and m.entry.name == "nemotron-h-8b-base"


def test_checkpoint_without_tokenizer_loads(saved):
    _, path = saved
    for f in path.glob("tokenizer*"):
        f.unlink()
    m = zoo.load(path)
    assert m.tokenizer is None
