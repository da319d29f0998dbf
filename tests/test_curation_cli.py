"""`zoo curate` end to end through the CLI: local HTML pages -> text -> quality -> dedup -> decontam; CrossThink."""

from __future__ import annotations

import json
import shutil

import pytest

from zoo.cli import main
from zoo.training.curation.stage import read_jsonl, write_jsonl_atomic

PAGE = """<html><head><title>{title}</title></head><body><nav>Home | Forum | Login</nav>
<h2>{title}</h2><p>Let <script type="math/tex">f(x) = x^{n}</script>. Then the derivative is
<script type="math/tex">f'(x) = {n} x^{m}</script>, hence the slope at 1 is {n}. Therefore we solve the equation
<span class="katex"><math><semantics><mrow><mi>y</mi><mo>=</mo><mn>{n}</mn></mrow>
<annotation encoding="application/x-tex">y = {n}</annotation></semantics></math></span> step by step.</p>
<pre>for k in range({n}):
    total += k ** {m}
</pre><p>{filler}</p></body></html>"""


@pytest.mark.skipif(shutil.which("lynx") is None, reason="lynx not installed (apt-get install lynx)")
def test_ccmath_pipeline_through_cli(tmp_path, capsys):
    pages = tmp_path / "pages"
    pages.mkdir()
    for n in range(2, 6):
        filler = " ".join(f"Remark {n}.{j}: the power {n * j} grows, so the sum is {n + j}." for j in range(12))
        if n == 4:  # a planted benchmark copy
            filler += " Natalia sold 48 clips in April and half as many in May. How many clips did she sell?"
        (pages / f"p{n}.html").write_text(PAGE.format(title=f"Powers {n}", n=n, m=n - 1, filler=filler))
    (pages / "p2-copy.html").write_text((pages / "p2.html").read_text().replace("Home | Forum", "Home"))
    (pages / "notes.txt").write_text("Cookie policy. Subscribe to our newsletter. Login. Sign up. " * 4)
    bench = tmp_path / "bench.jsonl"
    write_jsonl_atomic(bench, [{"question": "Natalia sold 48 clips in April and half as many in May. How many clips "
                                            "did she sell?", "answer": "72"}])

    assert main(["curate", "ingest", str(pages), "--out", str(tmp_path / "raw.jsonl")]) == 0
    assert main(["curate", "extract", str(tmp_path / "raw.jsonl"), str(tmp_path / "text.jsonl")]) == 0
    assert main(["curate", "quality", str(tmp_path / "text.jsonl"), str(tmp_path / "q.jsonl")]) == 0
    assert main(["curate", "dedup", str(tmp_path / "q.3plus.jsonl"), str(tmp_path / "dd.jsonl")]) == 0
    assert main(["curate", "decontam", str(tmp_path / "dd.jsonl"), str(tmp_path / "clean.jsonl"),
                 "--bench", str(bench)]) == 0
    out = capsys.readouterr().out
    assert "ingest: 6 pages" in out
    assert "dedup: 5 in, 4 kept, 1 dropped (near_duplicate=1)" in out
    assert "decontam: 4 in, 3 kept, 1 dropped (benchmark_overlap=1)" in out
    texts = {r["source"].rsplit("/", 1)[-1]: r["text"] for _, r in read_jsonl(tmp_path / "clean.jsonl")}
    # Directories are ingested in sorted order, so "p2-copy.html" comes first and is the copy that is kept.
    assert set(texts) == {"p2-copy.html", "p3.html", "p5.html"}
    assert "$f'(x) = 3 x^2$" in texts["p3.html"] and "$y = 3$" in texts["p3.html"]
    assert "    total += k ** 2" in texts["p3.html"].splitlines()
    stats = json.loads((tmp_path / "q.jsonl.stats.json").read_text())
    assert stats["rows_in"] == 6 and stats["kept"] == 6
    assert len(list(read_jsonl(tmp_path / "q.3plus.jsonl"))) == 5  # the boilerplate-only notes fall below 3


def test_crossthink_and_blend_through_cli(tmp_path, capsys):
    rows = [{"id": f"g{i}", "domain": "general", "source": "mmlu", "question": f"What is item {i}?",
             "options": ["red", "blue"], "answer": "A"} for i in range(8)]
    rows += [{"id": f"m{i}", "domain": "math", "source": "math", "question": f"Compute {i}+1.",
              "answer": str(i + 1)} for i in range(6)]
    write_jsonl_atomic(tmp_path / "in.jsonl", rows)
    assert main(["curate", "crossthink", str(tmp_path / "in.jsonl"), str(tmp_path / "rl.jsonl")]) == 0
    assert main(["curate", "blend", str(tmp_path / "rl.jsonl"), "--out", str(tmp_path / "b.jsonl"),
                 "--name", "gpr_up"]) == 0
    out = capsys.readouterr().out
    assert "crossthink: 14 in, 14 kept" in out and "blend gpr_up: general=8, math=4" in out
    rec = next(r for _, r in read_jsonl(tmp_path / "b.jsonl"))
    assert set(rec) == {"id", "prompt", "answer", "task", "format", "domain", "source"}


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["curate", "dedup", str(tmp_path / "missing.jsonl"), str(tmp_path / "o.jsonl")]) == 2
    assert "missing.jsonl: input file not found" in capsys.readouterr().err
    assert main(["curate", "cleanup", str(tmp_path / "x.jsonl"), str(tmp_path / "o.jsonl")]) == 2
    assert "give exactly one of --model and --endpoint" in capsys.readouterr().err
