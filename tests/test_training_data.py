"""Data pipeline: row errors name file:line, packing invariants, blend proportions, mid-epoch resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.training.data import IGNORE_INDEX, BlendSampler, DataError, Document, PackedBatches, read_rows, tokenize_texts


def _docs(lengths: list[int], offset: int = 0) -> list[Document]:
    # Token values encode (document, position) so packed rows can be checked against their source.
    return [Document(np.arange(n, dtype=np.int64) + 1000 * (i + 1) + offset) for i, n in enumerate(lengths)]


def test_read_rows_reports_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:4: invalid JSON"):
        list(read_rows(f, "text"))
    f.write_text('{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: missing field `text`"):
        list(read_rows(f, "text"))
    f.write_text('{"text": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: each line must be a JSON object"):
        list(read_rows(f, "text"))
    f.write_text('{"text": "a"}\n{"text": 5}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: expected a string"):
        tokenize_texts(read_rows(f, "text"), lambda s: [ord(c) for c in s], eos_id=0)


def test_read_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["hello", "world"]}), tmp_path / "d.parquet")
    rows = list(read_rows(tmp_path, "text"))
    assert [r[1] for r in rows] == ["hello", "world"]
    assert rows[1][0].endswith("d.parquet:row 1")
    with pytest.raises(DataError, match="no column `body`"):
        list(read_rows(tmp_path / "d.parquet", "body"))


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(2, 40), min_size=1, max_size=12), seq=st.integers(8, 32),
       rows=st.integers(1, 3), split=st.booleans())
def test_packing_invariants(lengths, seq, rows, split):
    docs = _docs(lengths)
    batches = PackedBatches(BlendSampler({"a": docs}, [], total_tokens=10_000), seq, rows, split_docs=split)
    for _ in range(3):
        b = next(batches)
        ids, lab, doc, att = (b[k].numpy() for k in ("input_ids", "labels", "document_ids", "attention_mask"))
        assert ids.shape == (rows, seq)
        for r in range(rows):
            for t in range(seq - 1):
                if lab[r, t] != IGNORE_INDEX:
                    # A target is the next token of the same document, never across a boundary or into padding.
                    assert lab[r, t] == ids[r, t + 1] and doc[r, t] == doc[r, t + 1] and att[r, t + 1] == 1
                    assert ids[r, t + 1] - ids[r, t] == 1  # consecutive positions of one source document
            assert lab[r, -1] == IGNORE_INDEX
            # Padding only at the end, and in its own document.
            n = att[r].sum()
            assert att[r, :n].all() and not att[r, n:].any()
            if n < seq:
                assert (doc[r, n:] > doc[r, n - 1]).all()
            if not split:  # whole documents only: every run of ids starts at a document start
                starts = [0] + [t for t in range(1, n) if doc[r, t] != doc[r, t - 1]]
                assert all(ids[r, s] % 1000 == 0 for s in starts)


@settings(max_examples=25, deadline=None)
@given(w=st.floats(0.1, 0.9), la=st.integers(3, 30), lb=st.integers(3, 30))
def test_blend_follows_token_shares(w, la, lb):
    s = BlendSampler({"a": _docs([la] * 5), "b": _docs([lb] * 7)}, [(0.0, {"a": w, "b": 1 - w})],
                     total_tokens=10**9)
    toks = {"a": 0, "b": 0}
    for _ in range(400):
        name, d = next(s)
        toks[name] += len(d)
    total = sum(toks.values())
    # Deterministic deficit rule: never more than one document away from the target share.
    assert abs(toks["a"] - w * total) <= max(la, lb) + 1


def test_phase_switch_changes_blend():
    s = BlendSampler({"a": _docs([10] * 4), "b": _docs([10] * 4)}, [(0.0, {"a": 1.0}), (0.5, {"b": 1.0})],
                     total_tokens=1000)
    names = [next(s)[0] for _ in range(100)]
    assert names[:50] == ["a"] * 50 and names[50:] == ["b"] * 50


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(2, 50), min_size=2, max_size=10), cut=st.integers(1, 8), pack=st.booleans())
def test_resume_mid_epoch_equals_uninterrupted(lengths, cut, pack):
    def make():
        s = BlendSampler({"a": _docs(lengths), "b": _docs(lengths[::-1], offset=500)},
                         [(0.0, {"a": 0.7, "b": 0.3}), (0.4, {"a": 0.2, "b": 0.8})], total_tokens=2000, seed=3)
        return PackedBatches(s, 24, 2, pack=pack)

    ref = make()
    expected = [next(ref) for _ in range(12)]
    run = make()
    for _ in range(cut):
        next(run)
    state = json.loads(json.dumps(run.state_dict()))  # must survive JSON (it goes to state.json)
    resumed = make()
    resumed.load_state_dict(state)
    for i in range(cut, 12):
        got = next(resumed)
        for k in got:
            assert (got[k] == expected[i][k]).all(), (i, k)


def test_resume_rejects_other_data():
    s = BlendSampler({"a": _docs([5, 6])}, [], total_tokens=100)
    other = BlendSampler({"a": _docs([5, 6, 7])}, [], total_tokens=100)
    with pytest.raises(DataError, match="other data"):
        other.load_state_dict(s.state_dict())
