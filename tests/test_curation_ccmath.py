"""Nemotron-CC-Math pipeline on real pages: decode, WARC, a real lynx process, cleanup, quality, dedup, decontam."""

from __future__ import annotations

import io
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from zoo.errors import ZooError
from zoo.training.curation.cleanup import NO_USEFUL_CONTENT, CleanupStage, chunk_text
from zoo.training.curation.decode import decode_bytes, detect_type, flatten_notebook
from zoo.training.curation.decontam import DecontamStage, HashedNgramEmbedder, load_benchmark_texts
from zoo.training.curation.dedup import DedupStage, candidate_probability
from zoo.training.curation.extract import LYNX_FLAGS, ExtractStage, LynxMissingError, find_lynx, lynx_dump
from zoo.training.curation.llm import OpenAIChatGenerator
from zoo.training.curation.mathhtml import rewrite_math
from zoo.training.curation.quality import HashedLinearScorer, HeuristicMathScorer, QualityStage, split_by_score
from zoo.training.curation.stage import Drop, MapStage, read_jsonl, run_stage, write_jsonl_atomic
from zoo.training.curation.warc import ingest

needs_lynx = pytest.mark.skipif(shutil.which("lynx") is None, reason="lynx not installed (apt-get install lynx)")

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Quadratics</title>
<script>var tracker = "SHOULD_NOT_APPEAR";</script><style>.x { color: red }</style></head>
<body>
<nav><a href="/">Home</a> | <a href="/forum">Forum</a> | <a href="/login">Login</a></nav>
<h1>Solving quadratics</h1>
<p>MathJax: the roots are <script type="math/tex">x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}</script> for
<script type="math/tex; mode=display">ax^2+bx+c=0</script></p>
<p>KaTeX: <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>e</mi><mo>=</mo><mi>m</mi>
<msup><mi>c</mi><mn>2</mn></msup></mrow><annotation encoding="application/x-tex">e = mc^2</annotation></semantics>
</math></span><span class="katex-html" aria-hidden="true"><span class="mord">e</span><span class="mrel">=</span>
<span class="mord">mc</span><span class="msupsub">2</span></span></span> is famous.</p>
<p>MathML: <math display="block"><mfrac><mi>a</mi><mi>b</mi></mfrac><mo>+</mo><msqrt><mi>x</mi></msqrt>
<mo>&#x2264;</mo><msup><mi>y</mi><mn>3</mn></msup></math></p>
<p>Inline TeX stays: \\(a^2 + b^2 = c^2\\).</p>
<p><img class="latex" src="/tex.png" alt="\\int_0^1 x\\,dx"></p>
<pre><code>def discriminant(a, b, c):
    d = b * b - 4 * a * c
    if d &lt; 0:
        return None
    return d
</code></pre>
<footer>Copyright 2024. <a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


@needs_lynx
def test_lynx_keeps_math_and_code_indentation(tmp_path):
    text = lynx_dump(rewrite_math(PAGE))
    assert "$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$" in text  # MathJax script (lynx alone drops it)
    assert "$$ax^2+bx+c=0$$" in text
    assert "$e = mc^2$" in text  # KaTeX annotation, and the visual duplicate is gone
    assert "mc2" not in text.replace(" ", "")
    assert "$$\\frac{a}{b}+\\sqrt{x}\\le {y}^{3}$$" in text  # MathML converted
    assert "\\(a^2 + b^2 = c^2\\)" in text
    assert "$\\int_0^1 x\\,dx$" in text
    code = ["def discriminant(a, b, c):", "    d = b * b - 4 * a * c", "    if d < 0:", "        return None",
            "    return d"]
    lines = text.splitlines()
    i = lines.index(code[0])
    assert lines[i:i + 5] == code  # indentation byte for byte
    assert "SHOULD_NOT_APPEAR" not in text and "color: red" not in text
    assert "Solving quadratics" in lines  # the centred <h1> is left-aligned, not 5,000 columns in
    # The published pipeline keeps boilerplate for the LLM step; the optional strip removes nav and footer.
    assert "Login" in text
    stripped = lynx_dump(rewrite_math(PAGE, drop_boilerplate=True))
    assert "Login" not in stripped and "Privacy policy" not in stripped and "e = mc^2" in stripped


def test_lynx_flags_are_the_published_ones():
    assert LYNX_FLAGS == ("-dump", "-stdin", "-nolist", "-width=10000", "-assume_charset=utf-8",
                          "-display_charset=utf-8", "-localhost", "-force_html")


def test_missing_lynx_is_a_clear_error():
    with pytest.raises(LynxMissingError, match="apt-get install lynx"):
        find_lynx("lynx-that-does-not-exist")
    with pytest.raises(LynxMissingError):
        ExtractStage(lynx="lynx-that-does-not-exist")


def test_decode_charsets_and_types():
    latin = "<html><head><meta charset='iso-8859-1'></head><body>Théorème de Pythagore: a² + b² = c²</body></html>"
    d = decode_bytes(latin.encode("latin-1"))
    assert "Théorème" in d.text and "a² + b²" in d.text and d.charset == "iso8859-1"
    assert decode_bytes("\ufeffhello".encode("utf-8")).text == "hello"
    mojibake = "The café’s menu".encode().decode("latin-1")  # double-encoded text
    fixed = decode_bytes(mojibake.encode("utf-8"))
    assert fixed.text == "The café’s menu" and fixed.repaired
    assert decode_bytes(b'<?xml version="1.0"?>\n<html><body>x</body></html>').text.startswith("<html>")
    nb = json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# Primes\n", "A prime $p$ ..."]},
        {"cell_type": "code", "source": "for n in range(3):\n    print(n)", "outputs": [{"text": ["0\n1\n2\n"]}]},
    ], "nbformat": 4})
    assert detect_type(nb) == "notebook"
    flat = flatten_notebook(nb)
    assert "for n in range(3):\n    print(n)" in flat and "0\n1\n2" in flat and "# Primes" in flat
    assert detect_type(PAGE) == "html"
    assert detect_type("Just a plain note about x = 2.") == "text"
    assert detect_type("\x00\x01\x02\x03" * 100) == "other"


@needs_lynx
def test_warc_to_extracted_jsonl(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    warc = tmp_path / "crawl.warc.gz"
    with warc.open("wb") as f:
        w = WARCWriter(f, gzip=True)
        pages = [("http://ex.org/q", "text/html; charset=utf-8", PAGE.encode("utf-8")),
                 ("http://ex.org/fr", "text/html; charset=windows-1252",
                  "<html><body><p>Démonstration : soit $n$ un entier.</p></body></html>".encode("cp1252")),
                 ("http://ex.org/t.txt", "text/plain", b"Plain text: let x = 3, then x^2 = 9."),
                 ("http://ex.org/bin", "application/octet-stream", bytes(range(256)) * 4)]
        for url, ctype, body in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))
    raw = tmp_path / "raw.jsonl"
    assert ingest([warc], raw) == 4
    st = run_stage(ExtractStage(), raw, tmp_path / "text.jsonl")
    recs = [r for _, r in read_jsonl(tmp_path / "text.jsonl")]
    assert (st.rows_in, st.kept, dict(st.dropped)) == (4, 3, {"binary": 1})
    by_url = {r["url"]: r for r in recs}
    assert "$e = mc^2$" in by_url["http://ex.org/q"]["text"]
    assert "Démonstration" in by_url["http://ex.org/fr"]["text"] and by_url["http://ex.org/fr"]["charset"] == "cp1252"
    assert by_url["http://ex.org/t.txt"]["content_type"] == "text"
    assert "payload_b64" not in recs[0]
    stats = json.loads((tmp_path / "text.jsonl.stats.json").read_text())
    assert stats["kept"] == 3 and stats["dropped"] == {"binary": 1}


def test_bad_input_names_file_and_row(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(ZooError, match=r"bad\.jsonl:2: invalid JSON"):
        run_stage(QualityStage(HeuristicMathScorer()), bad, tmp_path / "out.jsonl")
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ZooError, match=r"bad\.jsonl:2: missing field 'text'"):
        run_stage(QualityStage(HeuristicMathScorer()), bad, tmp_path / "out.jsonl", overwrite=True)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written under the final name


def test_stage_resumes_after_interruption(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl_atomic(inp, [{"id": i, "text": f"doc {i}"} for i in range(10)])
    calls = []

    def fn(rec, where):
        calls.append(rec["id"])
        return rec if rec["id"] % 3 else Drop("mult3")

    stage = MapStage("toy", fn, batch_size=3)
    st = run_stage(stage, inp, tmp_path / "out.jsonl", max_batches=2)  # "crash" after 2 batches
    assert st.rows_in == 6 and not (tmp_path / "out.jsonl").exists()
    with open(tmp_path / "out.jsonl.part", "a") as f:  # a torn write after the last checkpoint
        f.write('{"id": 99, "te')
    st = run_stage(stage, inp, tmp_path / "out.jsonl")
    assert calls == list(range(10))  # nothing reprocessed
    assert [r["id"] for _, r in read_jsonl(tmp_path / "out.jsonl")] == [1, 2, 4, 5, 7, 8]
    assert (st.rows_in, st.kept, dict(st.dropped), st.resumed_from_row) == (10, 6, {"mult3": 4}, 6)
    run_stage(stage, inp, tmp_path / "out.jsonl")  # finished output: not recomputed
    assert len(calls) == 10


class _FakeChatServer(BaseHTTPRequestHandler):
    """OpenAI-compatible /v1/chat/completions that 'cleans' by keeping lines with math or code."""

    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        page = body["messages"][-1]["content"].split("Page:\n", 1)[1]
        keep = [ln for ln in page.splitlines() if "$" in ln or ln.startswith("    ") or ln.startswith("def ")]
        reply = "\n".join(keep) if keep else NO_USEFUL_CONTENT
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_cleanup_through_openai_compatible_endpoint(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _FakeChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gen = OpenAIChatGenerator(f"http://127.0.0.1:{server.server_port}/v1", model="phi-4")
        math_doc = "Home | Login\n\nThe identity $a^2-b^2=(a-b)(a+b)$ holds.\n\n" + "\n\n".join(
            f"Paragraph {i} about $x_{i}$." for i in range(30))
        inp = tmp_path / "in.jsonl"
        write_jsonl_atomic(inp, [{"id": "m", "text": math_doc}, {"id": "ads", "text": "Buy now! Subscribe!"}])
        st = run_stage(CleanupStage(gen, max_chunk_tokens=60), inp, tmp_path / "out.jsonl")
        assert (st.kept, dict(st.dropped)) == (1, {"no_useful_content": 1})
        (rec,) = [r for _, r in read_jsonl(tmp_path / "out.jsonl")]
        assert "Home | Login" not in rec["text"] and "$a^2-b^2=(a-b)(a+b)$" in rec["text"]
        assert rec["cleanup_chunks"] > 1  # the page was chunked to the token limit
        req = _FakeChatServer.seen[0]
        assert (req["model"], req["temperature"], req["top_p"], req["top_k"]) == ("phi-4", 0.7, 0.8, 20)
        assert "NO USEFUL CONTENT" in req["messages"][0]["content"] and "$...$" in req["messages"][0]["content"]
    finally:
        server.shutdown()


def test_chunking_respects_token_limit_and_order():
    text = "\n\n".join(f"para {i} " + "word " * (i % 7 * 10) for i in range(40)) + "\n\n" + "x" * 2000
    chunks = chunk_text(text, 50)
    assert all((len(c) + 3) // 4 <= 50 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_quality_scores_and_splits(tmp_path):
    good = ("Theorem. Let $p$ be a prime. Then $a^p \\equiv a \\pmod p$. Proof: consider the polynomial "
            "$(x+1)^p = \\sum_k \\binom{p}{k} x^k$; hence every middle coefficient is divisible by $p$. Therefore "
            "by induction the claim holds. Example: solve $x^2 = 4$, so $x = \\pm 2$. ") * 6
    spam = "Subscribe to our newsletter! Click here to login. Cookie policy. Follow us. All rights reserved. " * 5
    s_good, s_spam = HeuristicMathScorer().score([good, spam])
    assert s_good >= 4 and s_spam < 1
    inp = tmp_path / "in.jsonl"
    write_jsonl_atomic(inp, [{"id": 0, "text": good}, {"id": 1, "text": spam},
                             {"id": 2, "text": "We compute x = 2 + 3 = 5 step by step."}])
    run_stage(QualityStage(HeuristicMathScorer()), inp, tmp_path / "q.jsonl")
    counts = split_by_score(tmp_path / "q.jsonl", tmp_path / "math", (3, 4))
    three = [r["id"] for _, r in read_jsonl(tmp_path / "math.3plus.jsonl")]
    four = [r["id"] for _, r in read_jsonl(tmp_path / "math.4plus.jsonl")]
    assert 0 in four and 1 not in three and set(four) <= set(three)
    assert counts[str(tmp_path / "math.3plus.jsonl")] == len(three)
    # The trainable scorer learns labels and round-trips through its JSON file.
    texts = [good, spam, "Let $f(x)=x^2$; the derivative is $2x$.", "Login to see prices. Buy now."] * 3
    scorer = HashedLinearScorer.fit(texts, [5, 0, 4, 0] * 3, alpha=0.1)
    scorer.save(tmp_path / "scorer.json")
    again = HashedLinearScorer.load(tmp_path / "scorer.json")
    a, b = again.score(["Let $g(x)=x^3$; the derivative is $3x^2$.", "Buy now, login for prices."])
    assert a > 2.5 > b
    assert again.score(texts) == pytest.approx(scorer.score(texts))


def _doc(i: int) -> str:
    topics = ["prime numbers", "integrals", "matrices", "probability", "graphs", "series", "vectors", "limits"]
    words = " ".join(f"w{i}_{j}" for j in range(150))
    return f"Notes on {topics[i % len(topics)]} number {i}. {words} The end of note {i}."


def test_minhash_dedup_finds_planted_near_duplicates(tmp_path):
    assert candidate_probability(0.9) > 0.99 and candidate_probability(0.5) < 0.01
    docs = [{"id": f"d{i}", "text": _doc(i)} for i in range(12)]
    near = []
    for i in (2, 7):  # near-duplicates: a few edited words, different whitespace and case
        t = _doc(i).replace(f"w{i}_5 ", "changed ").replace(f"w{i}_40", "edited").upper().replace(" ", "  ")
        near.append({"id": f"near{i}", "text": t})
    exact = {"id": "exact3", "text": _doc(3)}
    inp = tmp_path / "in.jsonl"
    write_jsonl_atomic(inp, docs[:6] + [near[0], exact] + docs[6:] + [near[1]])
    st = run_stage(DedupStage(), inp, tmp_path / "out.jsonl")
    kept = [r["id"] for _, r in read_jsonl(tmp_path / "out.jsonl")]
    assert kept == [d["id"] for d in docs]  # all distinct docs kept, originals (first seen) kept
    assert dict(st.dropped) == {"near_duplicate": 3}
    # Resume rebuilds the index from what was already kept: the late near-duplicate is still caught.
    st2 = run_stage(DedupStage(batch_size=5), inp, tmp_path / "out2.jsonl", max_batches=2)
    st2 = run_stage(DedupStage(batch_size=5), inp, tmp_path / "out2.jsonl")
    assert [r["id"] for _, r in read_jsonl(tmp_path / "out2.jsonl")] == kept and st2.dropped["near_duplicate"] == 3


def test_decontamination_removes_planted_benchmark_copies(tmp_path):
    bench = tmp_path / "gsm8k.jsonl"
    items = [{"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
                          "in May. How many clips did Natalia sell altogether in April and May?", "answer": "72"},
             {"question": "What is the remainder when 2^100 is divided by 7?", "answer": "2"}]
    write_jsonl_atomic(bench, items)
    texts = load_benchmark_texts([bench])
    docs = [
        {"id": "clean", "text": "Clips and friends: a story about selling things at a market in spring.\n\n" * 3},
        {"id": "copy", "text": "Homework help forum.\n\nNatalia sold clips to 48 of her friends in April, and then "
                               "she sold half as many clips in May. How many clips did Natalia sell altogether in "
                               "April and May?\n72\n\nReply from user42: thanks!"},
        {"id": "copy-inline", "text": "intro " * 80 + "What is the remainder when 2^100 is divided by 7? 2 " +
                                      "outro " * 80},
        {"id": "related", "text": "Remainders: when 3^50 is divided by 5 the remainder follows a cycle of length 4."},
    ]
    inp = tmp_path / "docs.jsonl"
    write_jsonl_atomic(inp, docs)
    st = run_stage(DecontamStage(HashedNgramEmbedder(), texts), inp, tmp_path / "out.jsonl")
    kept = {r["id"]: r["contam_score"] for _, r in read_jsonl(tmp_path / "out.jsonl")}
    assert set(kept) == {"clean", "related"} and max(kept.values()) < 0.9
    assert dict(st.dropped) == {"benchmark_overlap": 2}
    bad = tmp_path / "bad_bench.jsonl"
    bad.write_text('{"id": 1}\n')
    with pytest.raises(ZooError, match=r"bad_bench\.jsonl:1: benchmark item has none"):
        load_benchmark_texts([bad])


def test_payload_must_be_base64(tmp_path):
    if shutil.which("lynx") is None:
        pytest.skip("lynx not installed")
    inp = tmp_path / "raw.jsonl"
    write_jsonl_atomic(inp, [{"id": 1, "payload_b64": "@@not base64@@"}])
    with pytest.raises(ZooError, match=r"raw\.jsonl:1: field 'payload_b64' is not valid base64"):
        run_stage(ExtractStage(), inp, tmp_path / "out.jsonl")
