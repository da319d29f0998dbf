"""Prismatic Synthesis: sparse-cluster selection logic, agreement filter, resume, and a tiny end-to-end run."""

from __future__ import annotations

import json
import zlib

import torch

from zoo.training.curation.prismatic import (
    PrismaticConfig,
    final_answer,
    kmeans,
    parse_problems,
    proxy_featurizer,
    run_prismatic,
)


class ScriptedGenerator:
    """Returns scripted replies in turn (a stand-in for an LLM where the test needs exact control)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def generate(self, prompts):
        self.prompts += prompts
        return [self.replies[(len(self.prompts) - len(prompts) + i) % len(self.replies)] for i in range(len(prompts))]


def topic_featurizer(records):
    """Feature = one-hot of the topic word (first word) plus a little per-text jitter: clusters are the topics."""
    topics = ["algebra", "geometry", "counting", "primes"]
    out = []
    for r in records:
        v = torch.zeros(8)
        v[topics.index(r["problem"].split()[0])] = 1.0
        g = torch.Generator().manual_seed(zlib.crc32(r["problem"].encode()))
        out.append(v + 0.01 * torch.randn(8, generator=g))
    return torch.stack(out)


def test_kmeans_recovers_separated_clusters():
    torch.manual_seed(0)
    centers = torch.eye(6)[:3]
    x = torch.cat([c + 0.05 * torch.randn(30, 6) for c in centers])
    _, assign = kmeans(x, 3, seed=1)
    groups = [set(assign[i * 30:(i + 1) * 30].tolist()) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3


def test_keeps_candidates_in_sparse_clusters_only(tmp_path):
    pool = [{"problem": f"algebra problem number {i}"} for i in range(16)]
    pool += [{"problem": f"geometry problem number {i}"} for i in range(2)]
    pool += [{"problem": f"counting problem number {i}"} for i in range(2)]
    gen = ScriptedGenerator(["Problem: algebra new one A\nProblem: geometry new one B",
                             "Problem: algebra new two C\nProblem: counting new two D"])
    cfg = PrismaticConfig(iterations=1, cluster_frac=0.15, calls_per_iter=2, shots=3, keep_fraction=0.67, seed=0)
    final, reports = run_prismatic(pool, gen, topic_featurizer, cfg, out_dir=tmp_path)
    new = [p["problem"] for p in final[len(pool):]]
    assert sorted(new) == ["counting new two D", "geometry new one B"]  # the dense algebra cluster is skipped
    rep = reports[1]
    assert (rep["candidates"], rep["kept"], rep["dropped_dense"], rep["pool_size"]) == (4, 2, 2, 22)
    assert reports[1]["gvendi"] > reports[0]["gvendi"]
    assert "Problem 1:" in gen.prompts[0] and "Write 2 new problems" in gen.prompts[0]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == reports and (tmp_path / "pool_iter1.jsonl").exists()


def test_answer_agreement_filter_and_resume(tmp_path):
    pool = [{"problem": f"algebra seed {i} here"} for i in range(10)] + [{"problem": "primes seed one here"}]
    gen = ScriptedGenerator(["Problem: primes question with answer\nProblem: counting question without answer"])

    class Solver:
        def generate(self, prompts):
            return ["so \\boxed{7}" if "with answer" in p else f"maybe {i}" for i, p in enumerate(prompts)]

    cfg = PrismaticConfig(iterations=1, cluster_frac=0.3, calls_per_iter=1, keep_fraction=1.0, agree_samples=3,
                          agree_frac=0.6)
    final, reports = run_prismatic(pool, gen, topic_featurizer, cfg, solver=Solver(), out_dir=tmp_path)
    assert [(p["problem"], p["answer"]) for p in final[11:]] == [("primes question with answer", "7")]
    assert reports[1]["dropped_disagree"] == 1
    # A second run with more iterations resumes after iteration 1 instead of starting over.
    cfg2 = PrismaticConfig(iterations=2, cluster_frac=0.3, calls_per_iter=1, keep_fraction=1.0)
    gen2 = ScriptedGenerator(["Problem: geometry fresh problem text"])
    logs = []
    final2, reports2 = run_prismatic(pool, gen2, topic_featurizer, cfg2, out_dir=tmp_path, log=logs.append)
    assert "resuming after iteration 1" in logs[0]
    assert len(reports2) == 3 and final2[:12] == final and final2[-1]["problem"] == "geometry fresh problem text"


def test_parsing_helpers():
    assert parse_problems("Problem: one two three\n\nProblem 2: four five six\nProblem: x", 5) == [
        "one two three", "four five six"]
    assert parse_problems("an unmarked reply of words", 2) == ["an unmarked reply of words"]
    assert final_answer("thus \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert final_answer("it is 12, or maybe 13") == "13" and final_answer("no idea") is None


def test_end_to_end_with_tiny_zoo_generator_and_proxy(tmp_path):
    import zoo
    from zoo.training.curation.llm import ModelGenerator

    gen_model = zoo.load("llama-nemotron-nano-8b", tiny=True, seed=1)
    proxy = zoo.load("llama-nemotron-nano-8b", tiny=True, seed=2)
    assert gen_model.tokenizer is not None
    generator = ModelGenerator(gen_model, gen_model.tokenizer, max_new_tokens=16, temperature=1.0, top_p=1.0,
                               top_k=None, max_prompt_tokens=128)
    featurize = proxy_featurizer(proxy, proxy.tokenizer, d=64, max_len=48)
    pool = [{"problem": f"Compute {a} plus {b} and explain the steps.", "level": 1 + a % 3}
            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20)]]
    cfg = PrismaticConfig(iterations=2, calls_per_iter=3, shots=2, per_call=2, keep_fraction=0.5, seed=0)
    final, reports = run_prismatic(pool, generator, featurize, cfg, out_dir=tmp_path)
    assert [r["iteration"] for r in reports] == [0, 1, 2]
    assert all(1.0 <= r["gvendi"] <= 64 for r in reports)
    assert reports[-1]["pool_size"] == len(final) >= len(pool)
    for r in reports[1:]:
        assert r["kept"] + r["dropped_dense"] + r["dropped_duplicate"] + r["dropped_disagree"] == r["candidates"]
    assert sum(r["candidates"] for r in reports[1:]) > 0, "the tiny generator produced no parsable text"
    assert all(p["problem"].strip() for p in final)
