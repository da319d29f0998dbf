"""The G-Vendi study script and the model-based embedder run on tiny zoo models."""

from __future__ import annotations

import json
import math

import torch

from zoo.training.curation.decontam import DecontamStage, ModelEmbedder
from zoo.training.curation.experiments import StudyConfig, gvendi_study, write_nano_tiny_data
from zoo.training.curation.stage import read_jsonl, run_stage, write_jsonl_atomic


def test_gvendi_study_runs_and_resumes(tmp_path):
    write_nano_tiny_data(tmp_path / "pool.jsonl", tmp_path / "held.jsonl", n_train=24, n_heldout=6, seed=3)
    pool_q = {r["problem"] for _, r in read_jsonl(tmp_path / "pool.jsonl")}
    assert not pool_q & {r["problem"] for _, r in read_jsonl(tmp_path / "held.jsonl")}
    cfg = StudyConfig(model="llama-nemotron-nano-8b", subsets=3, subset_size=8, clusters=3, steps=2, batch_size=2,
                      d=32, max_len=96, heldout_limit=4, seed=0)
    logs = []
    res = gvendi_study(tmp_path / "pool.jsonl", tmp_path / "held.jsonl", tmp_path / "study.json", cfg,
                       log=logs.append)
    assert [r["subset"] for r in res["rows"]] == [0, 1, 2]
    assert [r["clusters_used"] for r in res["rows"]] == [1, 2, 3]
    for r in res["rows"]:
        assert 1.0 <= r["gvendi"] <= 8 and 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["token_accuracy"] <= 1.0
        assert math.isfinite(r["final_loss"])
    assert "spearman_rho" in res and "spearman_rho_token" in res
    assert json.loads((tmp_path / "study.json").read_text())["rows"] == res["rows"]
    # A rerun with the same config reuses the finished subsets instead of training again.
    logs2 = []
    res2 = gvendi_study(tmp_path / "pool.jsonl", tmp_path / "held.jsonl", tmp_path / "study.json", cfg,
                        log=logs2.append)
    assert res2["rows"] == res["rows"] and not any(line.startswith("{") for line in logs2)


def test_model_embedder_decontaminates_with_a_tiny_zoo_model(tmp_path):
    import zoo

    m = zoo.load("llama-nemotron-nano-8b", tiny=True, seed=0)
    emb = ModelEmbedder(m, m.tokenizer)
    v = emb.embed(["What is 2 + 2?", "What is 2 + 2?", "Describe the water cycle in detail."])
    assert v.shape[0] == 3 and torch.allclose(v.norm(dim=1), torch.ones(3))
    assert float(v[0] @ v[1]) > 0.999
    write_jsonl_atomic(tmp_path / "docs.jsonl", [{"id": "copy", "text": "What is 2 + 2?"},
                                                 {"id": "other", "text": "zebra " * 30}])
    st = run_stage(DecontamStage(emb, ["What is 2 + 2?"], threshold=0.999), tmp_path / "docs.jsonl",
                   tmp_path / "out.jsonl")
    assert st.dropped["benchmark_overlap"] == 1
    assert [r["id"] for _, r in read_jsonl(tmp_path / "out.jsonl")] == ["other"]


def test_cleanup_stage_with_a_tiny_zoo_model_backend(tmp_path):
    import zoo
    from zoo.training.curation.cleanup import CleanupStage
    from zoo.training.curation.llm import ModelGenerator

    m = zoo.load("llama-nemotron-nano-8b", tiny=True, seed=0)
    gen = ModelGenerator(m, m.tokenizer, max_new_tokens=12, temperature=0.0, max_prompt_tokens=256)
    count = lambda s: len(m.tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    write_jsonl_atomic(tmp_path / "in.jsonl", [{"id": 1, "text": "Theorem. $a+b=b+a$.\n\n" * 6}])
    st = run_stage(CleanupStage(gen, max_chunk_tokens=40, count_tokens=count, keep_raw=True, batch_size=1),
                   tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    # A random tiny model writes noise, but the plumbing is real: chunking by the model's tokenizer, batched
    # generation through zoo.generate, one record out with the raw text kept.
    assert st.rows_in == 1 and st.kept + sum(st.dropped.values()) == 1
    for _, r in read_jsonl(tmp_path / "out.jsonl"):
        assert r["cleanup_chunks"] >= 2 and r["raw_text"].startswith("Theorem.")
    assert gen.generate(["same prompt"]) != [] and ModelGenerator(m, m.tokenizer, temperature=0.0).generate(
        ["x y z"]) == ModelGenerator(m, m.tokenizer, temperature=0.0).generate(["x y z"])
