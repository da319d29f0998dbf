"""CrossThink templates, filters and blends, producing the RL-ready JSONL schema."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from zoo.errors import ZooError
from zoo.training.curation.crossthink import CrossThinkStage, blend, needs_options
from zoo.training.curation.stage import read_jsonl, run_stage, write_jsonl_atomic

ROWS = [
    {"id": "g1", "domain": "general", "source": "mmlu", "question": "What is the capital of France?",
     "options": ["Berlin", "Paris", "Rome", "Madrid"], "answer": "B"},
    {"id": "g2", "domain": "general", "source": "mmlu", "question": "Which of the following is a mammal?",
     "options": ["Shark", "Dolphin", "Trout", "Eel"], "answer": "Dolphin"},
    {"id": "g3", "domain": "general", "source": "mmlu", "question": "Which gas do plants absorb?",
     "options": {"A": "Oxygen", "B": "Carbon dioxide", "C": "Helium"}, "answer": "E"},  # gold not in options
    {"id": "g4", "domain": "general", "source": "natural_reasoning", "question": "Why is the sky blue?",
     "answer": "Because molecules in the air scatter short blue wavelengths of sunlight much more strongly than "
               "the longer red ones"},  # > 10 words: not verifiable as an open answer
    {"id": "g5", "domain": "general", "source": "natural_reasoning", "question": "What is 3 squared?",
     "answer": "9"},
    {"id": "m1", "domain": "math", "source": "numina", "question": "Solve $2x + 3 = 7$.", "answer": "2"},
    {"id": "m2", "domain": "math", "source": "numina", "question": "Prove that there are infinitely many primes."},
]


def _run(tmp_path, template):
    inp = tmp_path / "in.jsonl"
    write_jsonl_atomic(inp, ROWS)
    st = run_stage(CrossThinkStage(template), inp, tmp_path / f"{template}.jsonl")
    return {r["id"]: r for _, r in read_jsonl(tmp_path / f"{template}.jsonl")}, st


def test_open_template_and_verifiability_filters(tmp_path):
    out, st = _run(tmp_path, "open")
    assert set(out) == {"g1", "g5", "m1"}
    assert dict(st.dropped) == {"needs_options": 1, "gold_not_in_options": 1, "open_answer_too_long": 1,
                                "math_no_answer": 1}
    g1 = out["g1"]
    assert g1["answer"] == "Paris" and g1["task"] == "open" and g1["format"] == "open" and g1["source"] == "mmlu"
    assert "Berlin" not in g1["prompt"][0]["content"] and "\\boxed{}" in g1["prompt"][0]["content"]
    assert out["m1"]["task"] == "math" and out["m1"]["answer"] == "2" and out["m1"]["domain"] == "math"
    assert [m["role"] for m in g1["prompt"]] == ["user"]


def test_mcq_template_answers_with_the_label(tmp_path):
    out, st = _run(tmp_path, "mcq")
    assert out["g1"]["answer"] == "B" and out["g2"]["answer"] == "B"  # text answer "Dolphin" mapped to its label
    assert "A. Berlin\nB. Paris" in out["g1"]["prompt"][0]["content"]
    assert st.dropped["gold_not_in_options"] == 1 and "g3" not in out
    mixed, _ = _run(tmp_path, "open_or_mcq")
    assert mixed["g2"]["task"] == "mcq" and mixed["g1"]["task"] == "open"


def test_which_of_the_following_detector():
    for q in ("Which of the following is true?", "which one of these is a prime?", "All of the above apply.",
              "Select the correct statement."):
        assert needs_options(q), q
    for q in ("Which country has the largest population?", "What follows from the lemma?"):
        assert not needs_options(q), q


def test_blends_follow_named_ratios(tmp_path):
    rows = [{"id": f"g{i}", "domain": "general", "format": "open", "prompt": [], "answer": "x", "task": "open",
             "source": "s"} for i in range(40)]
    rows += [{"id": f"m{i}", "domain": "math", "format": "open", "prompt": [], "answer": "1", "task": "math",
              "source": "t"} for i in range(30)]
    write_jsonl_atomic(tmp_path / "rl.jsonl", rows)
    counts = blend([tmp_path / "rl.jsonl"], tmp_path / "gpr.jsonl", name="gpr_up")
    assert counts == {"general": 40, "math": 20}  # 2:1, as large as the 40 general rows allow
    got = Counter(r["domain"] for _, r in read_jsonl(tmp_path / "gpr.jsonl"))
    assert got == {"general": 40, "math": 20}
    counts = blend([tmp_path / "rl.jsonl"], tmp_path / "mr.jsonl", name="mr_up", total=90, seed=1)
    assert counts == {"math": 60, "general": 30}  # upsamples math by whole passes beyond 30
    ids = [r["id"] for _, r in read_jsonl(tmp_path / "mr.jsonl")]
    assert Counter(ids)["m0"] == 2
    assert blend([tmp_path / "rl.jsonl"], tmp_path / "nd.jsonl", name="natural") == {"general": 40, "math": 30}
    with pytest.raises(ZooError, match="unknown blend"):
        blend([tmp_path / "rl.jsonl"], tmp_path / "x.jsonl", name="nope")
    with pytest.raises(ZooError, match="mcq"):
        blend([tmp_path / "rl.jsonl"], tmp_path / "x.jsonl", name="mcq_up")
    assert json.loads((tmp_path / "gpr.jsonl").read_text().splitlines()[0])["prompt"] == []


def test_bad_rows_are_named(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl_atomic(inp, [ROWS[0], {"domain": "general", "options": ["a"], "answer": "A"}])
    with pytest.raises(ZooError, match=r"in\.jsonl:2: missing field 'question'"):
        run_stage(CrossThinkStage("mcq"), inp, tmp_path / "out.jsonl")
    write_jsonl_atomic(inp, [ROWS[0] | {"domain": "biology"}])
    with pytest.raises(ZooError, match=r"in\.jsonl:1: field 'domain'"):
        run_stage(CrossThinkStage("mcq"), inp, tmp_path / "out.jsonl", overwrite=True)
