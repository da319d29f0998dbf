"""MinHash-LSH fuzzy deduplication (Nemotron-CC-Math step 4, as in NeMo-Curator's fuzzy dedup).

Published settings: shingles of 24 characters, 20 bands x 13 rows (260 permutations). A pair of documents with
Jaccard similarity S on their shingle sets becomes a candidate with probability 1 - (1 - S^13)^20: about 0.5 at
S = 0.77 and > 0.97 at S = 0.85, so the effective threshold is ~0.8.

Streaming, keep-first: each document's signature is queried against the index of documents already kept; when a
candidate shows up, its estimated Jaccard (signature agreement) must also reach `threshold` before the document
is dropped as `near_duplicate` (the LSH band hit alone has false positives; checking the estimate removes most of
them without a second pass). Otherwise the document is kept and inserted. On resume the index is rebuilt from the
records already written. Text is normalised (lower case, whitespace collapsed) before shingling, so layout
differences do not hide copies.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from zoo.training.curation.stage import Drop, Result, require

SHINGLE_CHARS = 24
BANDS = 20
ROWS = 13
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def shingles(text: str, k: int = SHINGLE_CHARS) -> set[bytes]:
    """Character k-grams of the normalised text (the whole text when shorter than k)."""
    t = normalise(text)
    if len(t) <= k:
        return {t.encode("utf-8")}
    return {t[i:i + k].encode("utf-8") for i in range(len(t) - k + 1)}


def minhash(text: str, *, num_perm: int = BANDS * ROWS, seed: int = 1, k: int = SHINGLE_CHARS) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=_hash32)
    m.update_batch(list(shingles(text, k)))
    return m


def _hash32(b: bytes) -> int:
    # A fixed hash (not Python's salted hash) so signatures are identical across processes and resumes.
    return int.from_bytes(hashlib.blake2b(b, digest_size=4).digest(), "little")


def candidate_probability(s: float, bands: int = BANDS, rows: int = ROWS) -> float:
    """Probability that two documents with Jaccard `s` share at least one LSH band."""
    return 1.0 - (1.0 - s**rows) ** bands


@dataclass
class DedupStage:
    """JSONL stage: keep the first of each group of near-duplicates; later copies are dropped as `near_duplicate`.

    Records need `text`; `id` (when present) keys the index.
    """

    name: str = "dedup"
    batch_size: int = 256
    bands: int = BANDS
    rows: int = ROWS
    shingle_chars: int = SHINGLE_CHARS
    threshold: float = 0.8
    seed: int = 1
    _lsh: MinHashLSH = field(init=False, repr=False)
    _sigs: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lsh = MinHashLSH(num_perm=self.bands * self.rows, params=(self.bands, self.rows))
        self._sigs = {}

    def _sig(self, text: str) -> MinHash:
        return minhash(text, num_perm=self.bands * self.rows, seed=self.seed, k=self.shingle_chars)

    def _insert(self, key: str, m: MinHash) -> None:
        self._lsh.insert(key, m)
        self._sigs[key] = m.hashvalues

    def restore(self, kept: Any) -> None:
        """Rebuild the index from records a previous (interrupted) run already kept."""
        for i, rec in enumerate(kept):
            self._insert(str(rec.get("id", f"#{i}")), self._sig(rec["text"]))

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        out: list[Result] = []
        for rec, where in zip(records, wheres):
            m = self._sig(require(rec, "text", where))
            dup = None
            for key in self._lsh.query(m):
                if float(np.mean(self._sigs[key] == m.hashvalues)) >= self.threshold:
                    dup = key
                    break
            if dup is not None:
                out.append(Drop("near_duplicate"))
                continue
            key = str(rec.get("id", where))
            if key in self._sigs:  # two different documents sharing an id: keep both, index under the location
                key = where
            self._insert(key, m)
            out.append(rec)
        return out
