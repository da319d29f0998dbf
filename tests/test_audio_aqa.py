"""DCASE 2025 Task 5 harness on a synthetic AQA set of real generated audio, plus data validation and mapping rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from zoo.audio.aqa import (
    AQADataError,
    AQAQuery,
    build_queries,
    choice_permutations,
    evaluate,
    load_aqa,
    map_reply,
    write_report,
    write_submission,
)
from zoo.audio.io import load_audio
from zoo.audio.synthetic import TASKS, make_example, write_synthetic_aqa

K = 8


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic_aqa(tmp_path_factory.mktemp("aqa"), n_per_task=6, seed=0)


def _letter_of(q: AQAQuery) -> str:
    return "ABCDEFGH"[q.correct_position]


# ---------------------------------------------------------------------------------------------------------------
# A signal-processing listener: proves the answers are in the audio (not only in the metadata)
# ---------------------------------------------------------------------------------------------------------------


def _events(x: np.ndarray, sr: int = 16000) -> list[np.ndarray]:
    """Split a clip into loud segments (10 ms RMS above 0.05, joined across gaps < 50 ms)."""
    hop = sr // 100
    rms = np.sqrt(np.mean(x[: len(x) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.05)
    groups, start, prev = [], loud[0], loud[0]
    for i in loud[1:]:
        if i - prev > 5:
            groups.append((start, prev))
            start = i
        prev = i
    groups.append((start, prev))
    return [x[a * hop : (b + 1) * hop] for a, b in groups]


def _describe(seg: np.ndarray, sr: int = 16000) -> tuple[str, float]:
    power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    peak_share = power.max() / power.sum()
    freq = float(np.fft.rfftfreq(len(seg), 1 / sr)[power.argmax()])
    return ("tone" if peak_share > 0.05 else "noise"), freq


def _listen(q: AQAQuery) -> str:
    """Answer from the audio alone, replying with the option text (exercises the text mapping rules)."""
    x = load_audio(q.item.audio)
    kinds = [_describe(s) for s in _events(x)]
    numbers = ["none", "one", "two", "three", "four"]
    task = q.item.extra["task"]
    if task == "count":
        truth = numbers[len(kinds)]
    elif task == "pitch":
        truth = "the first tone" if kinds[0][1] > kinds[1][1] else "the second tone"
    elif task == "order":
        kind, freq = kinds[0]
        truth = "a burst of noise" if kind == "noise" else ("a high tone" if freq > 800 else "a low tone")
    else:
        truth = numbers[[k for k, _ in kinds].index("noise")]
    return f"I think it is {truth}."


# ---------------------------------------------------------------------------------------------------------------
# Protocol and metrics
# ---------------------------------------------------------------------------------------------------------------


def test_synthetic_set_is_valid_and_deterministic(synthetic, tmp_path):
    items = load_aqa(synthetic)
    assert len(items) == 6 * len(TASKS)
    assert {i.part for i in items} == {"bqa", "tsqa", "cqa"}
    again = write_synthetic_aqa(tmp_path, n_per_task=6, seed=0)
    assert again.read_text() == synthetic.read_text()
    a, b = (p.parent / "audio" / "count_0003.wav" for p in (synthetic, again))
    assert a.read_bytes() == b.read_bytes()
    # Every answer is used: the generator covers the option range (no constant answer to learn).
    counts = {i.answer for i in items if i.extra["task"] == "count"}
    assert len(counts) >= 3
    ex = make_example("pitch", np.random.default_rng(1))
    assert ex.answer in ex.choices and ex.audio.dtype == np.float32


def test_oracle_scores_100_in_both_aggregations(synthetic):
    items = load_aqa(synthetic)
    res = evaluate(items, answer=lambda q: f"The answer is ({_letter_of(q)}).", k=K, seed=0)
    m = res.metrics
    for part in ("bqa", "tsqa", "cqa"):
        assert m["parts"][part]["accuracy_mean"] == 1.0
        assert m["parts"][part]["accuracy_strict"] == 1.0
    assert m["macro"]["accuracy_mean"] == 1.0 and m["macro"]["accuracy_strict"] == 1.0
    assert m["micro"]["n_questions"] == len(items) and m["micro"]["unmapped_rate"] == 0.0


def test_listener_from_audio_scores_100(synthetic):
    res = evaluate(load_aqa(synthetic), answer=_listen, k=4, seed=3)
    assert res.metrics["macro"]["accuracy_strict"] == 1.0, [r.reply for r in res.records if not r.correct][:5]


def test_always_first_is_chance_and_zero_strict(synthetic):
    items = load_aqa(synthetic)
    res = evaluate(items, answer=lambda q: "A", k=K, seed=0)
    m = res.metrics
    chance = {p: float(np.mean([1 / len(i.choices) for i in items if i.part == p])) for p in m["parts"]}
    for part, pm in m["parts"].items():
        assert pm["accuracy_strict"] == 0.0
        assert abs(pm["accuracy_mean"] - chance[part]) < 0.07, (part, pm["accuracy_mean"], chance[part])
    assert m["macro"]["accuracy_strict"] == 0.0
    assert abs(m["macro"]["accuracy_mean"] - np.mean(list(chance.values()))) < 0.05


def test_likelihood_mode_oracle_and_position_bias(synthetic):
    items = load_aqa(synthetic)

    def oracle(q, conts):
        assert conts == list(q.options)  # the fixed template is the bare option text
        return [-0.1 if i == q.correct_position else -2.0 for i in range(len(conts))]

    def first(q, conts):
        return [-float(i) for i in range(len(conts))]

    good = evaluate(items, mode="likelihood", score=oracle, k=K)
    assert good.metrics["macro"]["accuracy_strict"] == 1.0
    assert good.records[0].scores is not None and max(good.records[0].scores) == -0.1
    bad = evaluate(items, mode="likelihood", score=first, k=K)
    assert bad.metrics["macro"]["accuracy_strict"] == 0.0
    assert 0.2 < bad.metrics["macro"]["accuracy_mean"] < 0.45


def test_permutations_seeded_balanced_and_order_independent():
    p = choice_permutations(4, 8, seed=0, item_id="q1")
    assert p == choice_permutations(4, 8, seed=0, item_id="q1")
    assert p != choice_permutations(4, 8, seed=1, item_id="q1")
    assert all(sorted(x) == [0, 1, 2, 3] for x in p)
    assert sorted(x[0] for x in p) == [0, 0, 1, 1, 2, 2, 3, 3]  # every option leads equally often
    assert len(set(p)) > 4  # not just rotations
    leaders = {x[0] for x in choice_permutations(3, 3, seed=5, item_id="z")}
    assert leaders == {0, 1, 2}


def test_results_do_not_depend_on_item_order(synthetic):
    items = load_aqa(synthetic)
    fwd = evaluate(items, answer=lambda q: "B", k=K)
    rev = evaluate(items[::-1], answer=lambda q: "B", k=K)
    assert fwd.metrics == rev.metrics


# ---------------------------------------------------------------------------------------------------------------
# Mapping rules, case by case
# ---------------------------------------------------------------------------------------------------------------

OPTS = ["a low tone", "a high tone", "a burst of noise", "tone"]


@pytest.mark.parametrize(
    "reply,expected",
    [
        # 1. letters
        ("B", 1),
        ("b", 1),
        ("(C)", 2),
        ("C.", 2),
        ("B) a high tone", 1),
        ("D: tone", 3),
        ("Answer: C", 2),
        ("The answer is (A).", 0),
        ("The correct option is B because it is higher.", 1),
        ("I would pick (B) here.", 1),
        ("(A) or (B)", None),  # conflicting letters: wrong
        ("E", None),  # beyond the options, and not an option text
        ("Answer: E", None),
        # 2. exact text
        ("a burst of noise", 2),
        # 3. normalised text
        ("A Burst-of-Noise!", 2),
        ("The answer is a high tone.", 1),
        ("  A LOW   tone ", 0),
        # 4. unique substring (whole words; an option inside another matched option does not count)
        ("It sounds like a high tone to me", 1),
        ("there is a burst of noise first", 2),
        ("I hear a low tone and a high tone", None),  # two options: ambiguous
        ("a tonal sound", None),  # "tone" is not a whole word here
        # 5. nothing
        ("I don't know", None),
        ("", None),
    ],
)
def test_map_reply_rules(reply, expected):
    assert map_reply(reply, OPTS) == expected


def test_map_reply_letter_beats_text_and_articles_are_not_letters():
    opts = ["C", "E", "G"]  # note names as options: the letter rule wins, as the prompt asks for letters
    assert map_reply("C", opts) == 2
    assert map_reply("a dog barking", ["a dog barking", "a cat"]) == 0  # "a" is an article, not option A
    assert map_reply("A dog barking", ["a cat", "a dog barking"]) == 1


# ---------------------------------------------------------------------------------------------------------------
# Data validation
# ---------------------------------------------------------------------------------------------------------------


def _write_items(tmp_path: Path, items: list[dict], name: str = "items.jsonl") -> Path:
    (tmp_path / "a.wav").write_bytes(b"RIFF")  # existence is what load_aqa checks
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


def _item(**kw) -> dict:
    base = {"id": "q1", "audio": "a.wav", "question": "Which?", "choices": ["x", "y"], "answer": "x", "part": "bqa"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "items,message",
    [
        ([_item(answer="z")], r"items.jsonl:1: item 'q1': answer 'z' is not among its choices"),
        ([_item(audio="missing.wav")], r"items.jsonl:1: item 'q1': audio file not found: .*missing.wav"),
        ([_item(), _item()], r"items.jsonl:2: duplicate item id 'q1' \(first at .*items.jsonl:1\)"),
        ([_item(part="music")], r"item 'q1': 'part' must be one of"),
        ([_item(choices=["x"], answer="x")], r"item 'q1': needs at least 2 choices"),
        ([_item(choices=["x", "x"])], r"item 'q1': duplicate choices \['x'\]"),
        ([_item(question="")], r"item 'q1': missing or empty field 'question'"),
        ([{k: v for k, v in _item().items() if k != "id"}], r"items.jsonl:1: item: missing field 'id'"),
    ],
)
def test_validation_errors_name_the_item(tmp_path, items, message):
    with pytest.raises(AQADataError, match=message):
        load_aqa(_write_items(tmp_path, items))


def test_invalid_json_names_the_line(tmp_path):
    path = _write_items(tmp_path, [_item()])
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(AQADataError, match=r"items.jsonl:2: invalid JSON"):
        load_aqa(path)


def test_json_forms_aliases_default_part_and_letter_prefixes(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    d = tmp_path / "per_question"
    d.mkdir()
    raw = {"id": "w1", "audio": "../a.wav", "question": "What is it?", "choice": ["A. Writing", "B. Typing"],
           "answer": "B. Typing"}  # fmt: skip
    (d / "w1.json").write_text(json.dumps(raw))
    items = load_aqa(d, part="cqa")
    assert items[0].choices == ("A. Writing", "B. Typing") and items[0].part == "cqa"
    q = build_queries(items[0], k=2)
    assert sorted(q[0].options) == ["Typing", "Writing"]  # stored letters dropped: options are re-lettered
    assert "(A) " in q[0].prompt and "A. " not in q[0].prompt
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps({"items": [_item(id="a"), _item(id="b", part="tsqa")]}))
    assert [i.id for i in load_aqa(lst)] == ["a", "b"]


def test_submission_csv_and_report(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    items = load_aqa(_write_items(tmp_path, [
        _item(id="q1", choices=["A. yes, really", "B. no"], answer="A. yes, really"),
        _item(id="q2", part="tsqa", choices=["one", "two", "three"], answer="two"),
    ]))  # fmt: skip

    def answer(q):
        return "(A)" if q.item.id == "q1" else "nonsense"

    res = evaluate(items, answer=answer, k=4)
    sub = write_submission(res, tmp_path / "out" / "submission.csv")
    rows = list(csv.reader(sub.open()))
    assert rows[0] == ["question", "answer"]
    # q1: the option shown first varies; the majority vote over 4 balanced shuffles ties 2-2 -> first predicted.
    assert rows[1][0] == "q1" and rows[1][1] in ("A. yes, really", "B. no")
    assert rows[2] == ["q2", ""]  # never mapped
    rep = json.loads(write_report(res, tmp_path / "out" / "report.json", model="oracle").read_text())
    assert rep["task"] == "dcase2025-task5-aqa" and rep["k"] == 4 and rep["model"] == "oracle"
    assert rep["metrics"]["parts"]["tsqa"]["unmapped_rate"] == 1.0
    assert rep["metrics"]["parts"]["bqa"]["accuracy_mean"] == 0.5
    assert len(rep["questions"][0]["permutations"]) == 4 and "reply" in rep["questions"][0]["permutations"][0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "submission.csv"]  # no temp files
