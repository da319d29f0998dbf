"""Distillation (logit KD, Puzzle blockwise local distillation), the memory-budget search and the distill recipe."""

from __future__ import annotations

import math

import pytest
import torch

import zoo
import zoo.training.config
from zoo.language.config import LMConfig
from zoo.training.arch_search import (
    NANO_V2_BUDGET_GIB,
    enumerate_candidates,
    nano_9b_v2_drop_order,
    rank_candidates,
)
from zoo.training.distill import block_variant_scores, blockwise_distill, kd_loss, replace_block
from zoo.training.prune import PruneSpec, estimate_importance, pruned_config


def test_kd_loss_hand_computed():
    s = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]])
    t = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]])
    labels = torch.tensor([[5, -100]])  # second position ignored
    loss, n = kd_loss(s, t, labels)
    p = torch.softmax(t[0, 0], -1)
    q = torch.softmax(s[0, 0], -1)
    expected = sum(p[i] * (math.log(p[i]) - math.log(q[i])) for i in range(3))
    assert n == 1 and abs(loss.item() - float(expected)) < 1e-6
    same, _ = kd_loss(t, t)
    assert abs(same.item()) < 1e-6


def test_replace_block_variants():
    m = zoo.load("nano-9b-v2", tiny=True)
    ids = torch.randint(0, 500, (2, 12))
    with torch.no_grad():
        m.blocks[1].mixer.down_proj.weight.zero_()  # an identity MLP block
        ref = m(ids).logits
        assert torch.allclose(replace_block(m, 1, "noop")(ids).logits, ref, atol=1e-5)
        assert torch.allclose(replace_block(m, 1, "linear")(ids).logits, ref, atol=1e-5)  # zero-init linear
        narrow = replace_block(m, 3, ("ffn", 32))
        assert narrow.blocks[3].mixer.intermediate_size == 32 and narrow.config.blocks[3].intermediate_size == 32
        assert narrow(ids).logits.shape == ref.shape
    with pytest.raises(Exception, match="not an MLP"):
        replace_block(m, 0, ("ffn", 8))


def test_blockwise_distillation_recovers_linear_block_exactly():
    """A DeciLM parent whose block is linear: the child's linear replacement is fitted exactly by least squares."""
    m = zoo.load("llama-nemotron-super-49b", tiny=True)
    li = next(i for i, b in enumerate(m.blocks) if b.kind == "linear")
    child = replace_block(m, li, "linear")  # zeroed: forgets the parent's weights
    batches = [torch.randint(0, 500, (2, 16)) for _ in range(3)]
    with torch.no_grad():
        before = (child(batches[0]).logits - m(batches[0]).logits).abs().max().item()
    blockwise_distill(m, child, li, li, batches, steps=0)
    with torch.no_grad():
        after = (child(batches[0]).logits - m(batches[0]).logits).abs().max().item()
    assert before > 1e-3 and after < 1e-3


def test_blockwise_distillation_trains_a_narrow_ffn():
    m = zoo.load("nano-9b-v2", tiny=True)
    child = replace_block(m, 1, ("ffn", 16))
    losses = blockwise_distill(m, child, 1, 1, [torch.randint(0, 500, (2, 16)) for _ in range(2)], steps=30,
                               lr=3e-3)
    assert losses[-1] < losses[0]


def test_block_variant_scores_rank_identity_block_best():
    m = zoo.load("nano-9b-v2", tiny=True)
    with torch.no_grad():
        m.blocks[1].mixer.down_proj.weight.zero_()
    scores = block_variant_scores(m, {1: ["noop"], 3: ["noop"]}, [torch.randint(0, 500, (1, 10))])
    assert scores[(1, "noop")] < 1e-8 < scores[(3, "noop")]


def test_memory_search_reproduces_the_nano_v2_constraint():
    parent = LMConfig.from_hf(zoo.get_entry("nano-12b-v2-base").config)
    order = nano_9b_v2_drop_order()
    child = pruned_config(parent, PruneSpec(hidden=4480, ffn=15680, mamba_heads=128, drop_blocks=tuple(order)))
    assert child.pattern == zoo.get_entry("nano-9b-v2").config["hybrid_override_pattern"]
    cands = enumerate_candidates(parent, num_blocks=[62, 56], hidden=[5120, 4480], ffn=[20480, 15680],
                                 mamba_heads=[128], drop_order=order, budget_gib=NANO_V2_BUDGET_GIB,
                                 context=131072, keep_too_big=True)
    by_shape = {(c.config.num_layers, c.config.hidden_size, c.config.intermediate_size): c for c in cands}
    assert by_shape[(56, 4480, 15680)].fits and 18 < by_shape[(56, 4480, 15680)].total_gib < NANO_V2_BUDGET_GIB
    assert not by_shape[(62, 5120, 20480)].fits  # the parent itself does not fit
    fitting = enumerate_candidates(parent, num_blocks=[62, 56], hidden=[5120, 4480], ffn=[20480, 15680],
                                   mamba_heads=[128], drop_order=order, budget_gib=NANO_V2_BUDGET_GIB,
                                   context=131072)
    assert all(c.fits for c in fitting) and (56, 4480, 15680) in {
        (c.config.num_layers, c.config.hidden_size, c.config.intermediate_size) for c in fitting}


def test_rank_candidates_on_tiny_parent():
    m = zoo.load("nano-12b-v2-base", tiny=True)
    batches = [torch.randint(0, 500, (2, 16)) for _ in range(2)]
    imp = estimate_importance(m, batches)
    cands = enumerate_candidates(m.config, num_blocks=[62, 56], hidden=[64, 48], ffn=[128, 64], mamba_heads=[4],
                                 drop_order=nano_9b_v2_drop_order(), budget_gib=1.0, context=1024)
    best = rank_candidates(m, cands, batches, imp, top=3)
    assert len(best) == 3 and best[0].mse <= best[1].mse <= best[2].mse
    assert best[0].config.hidden_size == 64 and best[0].config.num_layers == 62  # the unpruned shape is closest


def test_distill_recipe_tiny_runs_and_resumes(tmp_path):
    from zoo.training.loop import read_metrics
    from zoo.training.run import load_stage, run_recipe

    cfg = load_stage(zoo.training.config.recipe_path("nano-9b-v2", "distill"), tiny=True, out=tmp_path)
    assert cfg.stage == "distill" and cfg.kd.temperature == 1.0 and cfg.student.prune.hidden == 48
    full = load_stage(zoo.training.config.recipe_path("nano-9b-v2", "distill"), out=tmp_path)
    assert full.student.prune.hidden == 4480 and full.budget.budget_gib == 19.66
    run_recipe("nano-9b-v2", "distill", tiny=True, out=tmp_path)
    student = zoo.load(tmp_path / "distill" / "final")
    assert student.config.hidden_size == 48 and student.config.num_layers == 56
    metrics = read_metrics(tmp_path / "distill" / "metrics.jsonl")
    assert len(metrics) == 3 and all(math.isfinite(r["loss"]) and r["kl"] >= 0 for r in metrics)
    init = zoo.load(tmp_path / "distill" / "student_init")
    assert init.lineage["base_model"] == "nano-12b-v2-base"
