"""zoo.memory: parameter counting for every block kind, cache sizes, and the Nano-v2 A10G design constraint."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ConfigError, UnknownModelError, ZooError
from zoo.language.config import SUPPORTED_MODEL_TYPES, LMConfig
from zoo.language.model import LanguageModel
from zoo.memory import A10G_BUDGET_GIB, GIB, count_parameters, max_context, memory_plan

LM_ENTRIES = [n for n in zoo.list_models() if zoo.get_entry(n).config.get("model_type") in SUPPORTED_MODEL_TYPES]


def test_nano_v2_a10g_constraint() -> None:
    # Nemotron-Nano-2 report: the 9B must serve 128k tokens at batch 1 in bf16 within 19.66 GiB; the 12B cannot.
    nine = memory_plan("nano-9b-v2", 128 * 1024)
    assert nine.fits(A10G_BUDGET_GIB) and 18.5 < nine.total_gib < 19.0
    assert nine.kv_bytes == 4 * 2 * 8 * 128 * 131072 * 2  # 4 attention layers, 8 kv heads, head_dim 128: 2 GiB
    assert nine.weights_bytes == 2 * nine.params and 8.8e9 < nine.params < 8.9e9
    assert 0.12 < nine.ssm_bytes / GIB < 0.14
    twelve = memory_plan("nano-12b-v2-base", 128 * 1024)
    assert not twelve.fits(A10G_BUDGET_GIB) and twelve.weights_bytes / GIB > A10G_BUDGET_GIB
    assert max_context("nano-12b-v2-base", A10G_BUDGET_GIB) == 0
    assert max_context("nano-9b-v2", A10G_BUDGET_GIB) == 131072  # capped at max_position_embeddings
    assert "total" in "\n".join(nine.lines())


@pytest.mark.parametrize("name", LM_ENTRIES)
def test_count_matches_built_model(name: str) -> None:
    entry = zoo.get_entry(name)
    for hf in (entry.config, entry.tiny):
        cfg = LMConfig.from_hf(hf)
        with torch.device("meta"):
            built = LanguageModel(cfg)
        assert count_parameters(cfg) == sum(p.numel() for p in built.parameters()), (name, cfg.family)


def test_linear_blocks_and_tied_embeddings() -> None:
    cfg = LMConfig.from_hf(zoo.get_entry("llama-nemotron-super-49b").tiny)
    blocks = tuple(b if i % 3 else type(b)("linear", layer=b.layer, role=b.role) for i, b in enumerate(cfg.blocks))
    for c in (cfg.with_overrides(blocks=blocks), cfg.with_overrides(tie_word_embeddings=True)):
        with torch.device("meta"):
            built = LanguageModel(c)
        assert count_parameters(c) == sum(p.numel() for p in built.parameters())


@pytest.mark.parametrize("name", ["nano-9b-v2", "llama-nemotron-nano-8b"])
def test_cache_bytes_match_a_real_cache(name: str) -> None:
    model = zoo.load(name, tiny=True, seed=0, dtype="float32").eval()
    cfg, batch, context = model.config, 2, 11
    cache = model.new_cache(batch)
    with torch.no_grad():
        model(torch.randint(0, cfg.vocab_size, (batch, context)), cache=cache)
    plan = memory_plan(cfg, context, batch=batch, dtype="float32")
    assert plan.kv_bytes == cache.kv_bytes()
    # our cache keeps the whole conv kernel window; the plan counts the k-1 inputs vLLM keeps
    n_mamba = sum(b.mixer == "mamba" for b in cfg.blocks)
    assert plan.ssm_bytes == cache.ssm_bytes() - batch * n_mamba * cfg.conv_dim * 4
    assert plan.weights_bytes == 4 * sum(p.numel() for p in model.parameters())


def test_max_context_is_the_inverse() -> None:
    budget = 20.0
    n = max_context("acereason-nemotron-7b", budget)
    assert 0 < n < zoo.get_entry("acereason-nemotron-7b").config["max_position_embeddings"]
    assert memory_plan("acereason-nemotron-7b", n).fits(budget)
    assert not memory_plan("acereason-nemotron-7b", n + 1).fits(budget)
    assert max_context("acereason-nemotron-7b", budget, batch=4) < n
    assert max_context("acereason-nemotron-7b", budget, dtype="fp8") > n


def test_inputs_and_errors(tmp_path) -> None:
    hf = zoo.get_entry("nano-9b-v2").config
    by_name = memory_plan("nano-9b-v2", 4096)
    assert memory_plan(hf, 4096) == by_name == memory_plan(LMConfig.from_hf(hf), 4096)
    model = zoo.load("nano-9b-v2", tiny=True)
    model.save_pretrained(tmp_path / "ckpt")
    assert memory_plan(tmp_path / "ckpt", 64).params == sum(p.numel() for p in model.parameters())
    # a multimodal entry counts its encoders too (built on the meta device)
    audio = memory_plan("qwen2-audio-7b", 4096)
    text_only = memory_plan(zoo.get_entry("qwen2-audio-7b").config["text_config"], 4096)
    assert audio.params > text_only.params and audio.kv_bytes == text_only.kv_bytes
    with pytest.raises(ZooError, match="unknown dtype"):
        memory_plan("nano-9b-v2", 10, dtype="int3")
    with pytest.raises(ConfigError, match="model_type 'bert'"):
        memory_plan({"model_type": "bert"}, 10)
    with pytest.raises(UnknownModelError, match="nano-9b-v3"):
        memory_plan("nano-9b-v3", 10)
    with pytest.raises(ZooError, match="context >= 0"):
        memory_plan("nano-9b-v2", -1)
