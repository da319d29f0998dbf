"""Embedding-based decontamination against benchmark files (Nemotron-CC-Math step 5).

Published: embed every document and every benchmark item (MMLU, MMLU-Pro, MATH, GSM8K; prompt + answer) with a
Qwen2.5-32B embedding, drop documents with cosine > 0.9 to any item. Two deviations: (1) a document is embedded
piecewise and its score is the maximum over its paragraphs, paragraph pairs and word windows (`windows`), because
one whole-page vector dilutes a copied problem among unrelated text; (2) the embedder is pluggable and the
default needs no download:

* `HashedNgramEmbedder` (default): signed feature hashing of word 1-2-grams and character 5-grams into `dim`
  buckets, L2-normalised. It measures surface overlap (what a copy has), not paraphrase similarity.
* `ModelEmbedder`: mean-pooled final hidden states of any zoo language model (`out.hidden_states`) or of any
  module returning them; use a real embedding-capable checkpoint for paraphrase-level decontamination.

Benchmark files are JSONL; each item's text is the concatenation of the fields in `BENCH_FIELDS` it has.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.training.curation.stage import Drop, Result, read_jsonl, require

BENCH_FIELDS = ("question", "problem", "prompt", "input", "choices", "options", "answer", "solution", "target")
_WORD = re.compile(r"\w+|[^\w\s]")


@runtime_checkable
class Embedder(Protocol):
    """Texts -> L2-normalised vectors (n, dim)."""

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        ...


@dataclass
class HashedNgramEmbedder:
    """Signed hashing of word 1-2-grams and character 5-grams; deterministic across processes."""

    dim: int = 4096
    char_n: int = 5

    def _vec(self, text: str) -> torch.Tensor:
        t = " ".join(text.lower().split())
        toks = _WORD.findall(t)
        feats = toks + [a + " " + b for a, b in zip(toks, toks[1:])]
        feats += [t[i:i + self.char_n] for i in range(max(len(t) - self.char_n + 1, 0))]
        v = torch.zeros(self.dim)
        if not feats:
            return v
        idx, sign = [], []
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
            idx.append(h % self.dim)
            sign.append(1.0 if (h >> 63) & 1 else -1.0)
        v.index_add_(0, torch.tensor(idx), torch.tensor(sign))
        return v

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        return F.normalize(torch.stack([self._vec(t) for t in texts]), dim=-1)


@dataclass
class ModelEmbedder:
    """Mean-pooled final hidden states of a causal LM (`model(input_ids).hidden_states`, (b, s, h))."""

    model: torch.nn.Module
    tokenizer: Any
    max_tokens: int = 512

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        vecs = []
        dev = next(self.model.parameters()).device
        for t in texts:
            ids = self.tokenizer(t)["input_ids"][: self.max_tokens] or [0]
            out = self.model(torch.tensor([ids], device=dev))
            hs = getattr(out, "hidden_states", None)
            if hs is None:
                raise ZooError(f"{type(self.model).__name__} output has no hidden_states to embed with")
            vecs.append(hs[0].float().mean(0).cpu())
        return F.normalize(torch.stack(vecs), dim=-1) if vecs else torch.zeros(0, 1)


def load_benchmark_texts(paths: Sequence[str | Path], fields: Sequence[str] = BENCH_FIELDS) -> list[str]:
    """Read benchmark items from JSONL files; each item must have at least one of `fields`."""
    items = []
    for p in paths:
        for where, rec in read_jsonl(p):
            parts = []
            for k in fields:
                v = rec.get(k)
                if isinstance(v, list):
                    parts.append(" ".join(map(str, v)))
                elif isinstance(v, dict):
                    parts.append(" ".join(map(str, v.values())))
                elif v is not None:
                    parts.append(str(v))
            if not parts:
                raise ZooError(f"{where}: benchmark item has none of the fields {list(fields)}")
            items.append("\n".join(parts))
    if not items:
        raise ZooError(f"no benchmark items in {[str(p) for p in paths]}")
    return items


def window_sizes(bench_texts: Sequence[str], ratio: float = 1.25) -> list[int]:
    """Word-window sizes covering the benchmark item lengths on a geometric grid (every item length is within a
    factor `ratio` of some size), so each possible copy has a window of about its own length."""
    sizes = set()
    for t in bench_texts:
        n = max(len(t.split()), 1)
        sizes.add(max(1, round(ratio ** round(math.log(n) / math.log(ratio)))))
    return sorted(sizes)


def windows(text: str, sizes: Sequence[int]) -> list[str]:
    """Pieces of a document to compare with benchmark items: each paragraph, each pair of adjacent paragraphs, and
    word windows of each size at stride size // 8 (so a copy of about that size is >= 7/8 inside one window)."""
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    out = paras + [a + "\n\n" + b for a, b in zip(paras, paras[1:])]
    words = text.split()
    for size in sizes:
        if len(words) > size:
            stride = max(size // 8, 1)
            out += [" ".join(words[i:i + size]) for i in range(0, len(words) - size + stride, stride)]
    return out or [text]


@dataclass
class DecontamStage:
    """JSONL stage: drop documents whose max piece cosine (see `windows`) to a benchmark item exceeds `threshold`.

    Kept records get `contam_score` (that maximum). Drop reason: `benchmark_overlap`.
    """

    embedder: Embedder
    benchmark_texts: list[str]
    name: str = "decontam"
    batch_size: int = 32
    threshold: float = 0.9
    _bench: torch.Tensor = field(init=False, repr=False)
    _sizes: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._bench = self.embedder.embed(self.benchmark_texts)  # (m, dim)
        self._sizes = window_sizes(self.benchmark_texts)

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        wins: list[str] = []
        owner: list[int] = []
        for i, (rec, where) in enumerate(zip(records, wheres)):
            w = windows(require(rec, "text", where), self._sizes)
            wins.extend(w)
            owner.extend([i] * len(w))
        sims = self.embedder.embed(wins) @ self._bench.T  # (windows, m)
        best = torch.full((len(records),), -1.0).scatter_reduce(
            0, torch.tensor(owner), sims.max(dim=1).values, reduce="amax")
        out: list[Result] = []
        for rec, s in zip(records, best.tolist()):
            out.append(Drop("benchmark_overlap") if s > self.threshold else rec | {"contam_score": round(s, 4)})
        return out
