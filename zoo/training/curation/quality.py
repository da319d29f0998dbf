"""Math-quality scoring (Nemotron-CC-Math step 3): a FineMath-style 0-5 score per document and 3+ / 4+ splits.

The published pipeline runs the FineMath classifier (HuggingFaceTB/finemath-classifier, an embedding model with a
regression head, integer-rounded 0-5). Scorers here are pluggable (`QualityScorer`); two ship with the zoo and
need no download:

* `HeuristicMathScorer` (default): a transparent rule score. Points for math density (TeX commands, `$..$`
  spans, equations), for reasoning vocabulary (theorem, proof, solve, hence, ...), for length, and a penalty for
  boilerplate vocabulary (cookie, subscribe, login, ...). It is a cheap prior, not a substitute for FineMath.
* `HashedLinearScorer`: ridge regression on hashed word 1-2-gram counts, trained from a JSONL of (text, score)
  labels (e.g. FineMath scores of a sample, or annotations). Saved as JSON (nonzero weights), never pickled.

`score` -> `quality_score` (float in [0, 5]) and `quality_int` (rounded, as FineMath reports). The splits keep
`quality_int >= 3` (the 3+ set) and `>= 4` (the 4+ set).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from zoo.errors import ZooError
from zoo.training.curation.stage import Drop, Result, read_jsonl, require, write_text_atomic


@runtime_checkable
class QualityScorer(Protocol):
    """Maps documents to scores in [0, 5]."""

    def score(self, texts: Sequence[str]) -> list[float]:
        ...


# ---------------------------------------------------------------------------------------------------------------
# Heuristic default
# ---------------------------------------------------------------------------------------------------------------

_TEX_CMD = re.compile(r"\\(frac|sqrt|sum|int|lim|alpha|beta|gamma|theta|pi|sigma|infty|cdot|times|le|ge|ne|"
                      r"partial|mathbb|mathrm|left|right|begin|end|binom|log|sin|cos|tan|vec|hat)\b")
_DOLLAR = re.compile(r"\$[^$\n]{1,400}\$")
_EQUATION = re.compile(r"[A-Za-z0-9)\]]\s*[=<>\u2264\u2265]\s*[-A-Za-z0-9(\\]")
_REASONING = re.compile(r"\b(theorem|lemma|proof|corollary|definition|equation|solve|solution|therefore|hence|"
                        r"thus|let|suppose|derivative|integral|probability|polynomial|matrix|prime|function|"
                        r"example|step|formula|proposition|consider|compute|calculate)\b", re.I)
_BOILER = re.compile(r"\b(cookie|cookies|subscribe|login|log in|sign up|newsletter|advertisement|privacy policy|"
                     r"all rights reserved|click here|share this|follow us)\b", re.I)


@dataclass
class HeuristicMathScorer:
    """Rule score in [0, 5]; each term saturates so no single signal can carry a page alone."""

    def score(self, texts: Sequence[str]) -> list[float]:
        return [self._one(t) for t in texts]

    @staticmethod
    def _one(text: str) -> float:
        words = max(len(text.split()), 1)
        per100 = 100.0 / words
        math_hits = len(_TEX_CMD.findall(text)) + len(_DOLLAR.findall(text)) + len(_EQUATION.findall(text))
        reasoning = len(_REASONING.findall(text))
        boiler = len(_BOILER.findall(text))
        s = 2.0 * (1 - math.exp(-math_hits * per100 / 3.0))  # up to 2 for math density
        s += 1.5 * (1 - math.exp(-reasoning * per100 / 2.0))  # up to 1.5 for reasoning vocabulary
        s += 1.5 * min(1.0, math.log1p(words) / math.log1p(300))  # up to 1.5 for substance (300+ words)
        s -= 2.0 * min(1.0, boiler * per100 / 2.0)  # up to -2 for boilerplate-heavy pages
        return float(min(5.0, max(0.0, s)))


# ---------------------------------------------------------------------------------------------------------------
# Trainable linear scorer
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class HashedLinearScorer:
    """Ridge regression on hashed word 1-2-gram features (sklearn `HashingVectorizer`, stateless)."""

    coef: np.ndarray  # (n_features,)
    intercept: float
    n_features: int = 2**18

    @staticmethod
    def _vectorizer(n_features: int):
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2",
                                 token_pattern=r"(?u)\\[A-Za-z]+|\b\w+\b|[=+\-*/^$]")

    @classmethod
    def fit(cls, texts: Sequence[str], scores: Sequence[float], *, n_features: int = 2**18,
            alpha: float = 1.0) -> HashedLinearScorer:
        """Fit on labelled documents; `scores` in [0, 5]."""
        from sklearn.linear_model import Ridge

        if len(texts) != len(scores) or len(texts) < 2:
            raise ZooError(f"need >= 2 labelled texts with one score each, got {len(texts)} texts, {len(scores)} scores")
        x = cls._vectorizer(n_features).transform(list(texts))
        reg = Ridge(alpha=alpha).fit(x, np.asarray(scores, dtype=np.float64))
        return cls(np.asarray(reg.coef_, dtype=np.float64), float(reg.intercept_), n_features)

    def score(self, texts: Sequence[str]) -> list[float]:
        x = self._vectorizer(self.n_features).transform(list(texts))
        return [float(min(5.0, max(0.0, v))) for v in x @ self.coef + self.intercept]

    def save(self, path: str | Path) -> None:
        nz = np.flatnonzero(self.coef)
        data = {"kind": "hashed-linear", "n_features": self.n_features, "intercept": self.intercept,
                "index": nz.tolist(), "weight": self.coef[nz].tolist()}
        write_text_atomic(path, json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> HashedLinearScorer:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("kind") != "hashed-linear":
                raise ZooError(f"{path}: not a hashed-linear scorer file (kind={data.get('kind')!r})")
            coef = np.zeros(int(data["n_features"]))
            coef[np.asarray(data["index"], dtype=np.int64)] = data["weight"]
            return cls(coef, float(data["intercept"]), int(data["n_features"]))
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise ZooError(f"{path}: cannot read scorer ({e!r})") from None


def train_scorer(labels: str | Path, *, text_key: str = "text", score_key: str = "score") -> HashedLinearScorer:
    """Fit a `HashedLinearScorer` on a JSONL file of labelled documents."""
    texts, scores = [], []
    for where, rec in read_jsonl(labels):
        texts.append(require(rec, text_key, where))
        s = require(rec, score_key, where, (int, float))
        if not 0 <= s <= 5:
            raise ZooError(f"{where}: {score_key} must be in [0, 5], got {s}")
        scores.append(float(s))
    return HashedLinearScorer.fit(texts, scores)


def load_scorer(spec: str | None) -> QualityScorer:
    """`None`/"heuristic" -> the heuristic; otherwise a path to a saved `HashedLinearScorer`."""
    if spec in (None, "heuristic"):
        return HeuristicMathScorer()
    return HashedLinearScorer.load(spec)


# ---------------------------------------------------------------------------------------------------------------
# Stage and splits
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class QualityStage:
    """JSONL stage adding `quality_score` and `quality_int`; drops `below_min_score` when `min_score` is set."""

    scorer: QualityScorer
    name: str = "quality"
    batch_size: int = 64
    min_score: int | None = None

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        scores = self.scorer.score([require(r, "text", w) for r, w in zip(records, wheres)])
        out: list[Result] = []
        for rec, s in zip(records, scores):
            q = int(min(5, max(0, round(s))))
            if self.min_score is not None and q < self.min_score:
                out.append(Drop("below_min_score"))
            else:
                out.append(rec | {"quality_score": round(float(s), 4), "quality_int": q})
        return out


def split_by_score(inp: str | Path, out_prefix: str | Path, thresholds: Sequence[int] = (3, 4)) -> dict[str, int]:
    """Write `{out_prefix}.{t}plus.jsonl` holding the records with `quality_int >= t`, for each threshold.

    Streams: each split is written to a `.part` file and renamed when the input has been read completely.

    Returns:
        Path -> number of records written.
    """
    paths = {t: Path(f"{out_prefix}.{t}plus.jsonl") for t in thresholds}
    parts = {t: Path(str(p) + ".part") for t, p in paths.items()}
    counts = dict.fromkeys(thresholds, 0)
    files = {t: parts[t].open("w", encoding="utf-8") for t in thresholds}
    try:
        for where, rec in read_jsonl(inp):
            q = require(rec, "quality_int", where, int)
            line = json.dumps(rec, ensure_ascii=False) + "\n"
            for t in thresholds:
                if q >= t:
                    files[t].write(line)
                    counts[t] += 1
    except BaseException:
        for t, f in files.items():
            f.close()
            parts[t].unlink(missing_ok=True)
        raise
    for t, f in files.items():
        f.close()
        parts[t].replace(paths[t])
    return {str(paths[t]): counts[t] for t in thresholds}
