"""Training data: local JSONL/Parquet rows -> token documents -> weighted, phased blend -> packed batches.

Pipeline (each stage is a small object with `state_dict()` / `load_state_dict()` so a run resumes mid-epoch):

    read_rows(path, field)            rows with their file:line, malformed rows raise naming both
    Document(ids, loss_mask)          one tokenized sample; loss_mask marks the tokens that are *predicted*
    BlendSampler(sources, phases)     deterministic document stream; token-share weights per curriculum phase
    PackedBatches(sampler, ...)       fixed-length rows with document ids (packed) or one sample per row (padded)

Design choices:
- Blend weights are shares of *tokens*, not of documents (as in Megatron-style blends), and the sampler is a
  deterministic "most behind its share goes next" rule instead of random draws: the realised blend never drifts
  more than one document from its target, and the state is a few counters.
- Each source is read in a fresh seeded permutation per epoch, so the whole state is (epoch, position) per source.
- Batches are produced globally and sliced per rank, so any world size sees the same global batch and a 2-rank
  FSDP run computes the same losses as one process.
- Labels are pre-shifted: `labels[t]` is the target for position t, -100 where nothing is learned (padding,
  document boundaries, masked prompt tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import ZooError
from zoo.jsonl import iter_jsonl

IGNORE_INDEX = -100


class DataError(ZooError, ValueError):
    """A data file or row is malformed; the message names the file and line."""


# ----------------------------------------------------------------------------------------------------------------
# Reading rows


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".parquet") or p.name.endswith(".json"))
        if not files:
            raise DataError(f"{path}: no .jsonl or .parquet files in this directory")
        return files
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    return [path]


def read_rows(path: str | Path, field: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield `(location, value)` per row of a JSONL/Parquet file or directory of them.

    Args:
        path: A `.jsonl` / `.parquet` file or a directory (read recursively, sorted).
        field: The column to return; None returns the whole row dict.

    Yields:
        `"file:line"` (Parquet: `"file:row N"`) and the field value.

    Raises:
        DataError: for invalid JSON, a non-object row, or a missing field, naming file and line.
    """
    for f in _files(Path(path)):
        if f.suffix == ".parquet":
            # `datasets` reads Parquet offline through pyarrow, memory-mapped.
            import datasets

            ds = datasets.Dataset.from_parquet(str(f), keep_in_memory=False)
            if field is not None and field not in ds.column_names:
                raise DataError(f"{f}: no column `{field}`; columns: {ds.column_names}")
            for i, row in enumerate(ds):
                yield f"{f}:row {i}", row if field is None else row[field]
            continue
        for where, row in iter_jsonl(f, DataError):
            if field is not None and field not in row:
                raise DataError(f"{where}: missing field `{field}` (has {sorted(row)})")
            yield where, row if field is None else row[field]


# ----------------------------------------------------------------------------------------------------------------
# Documents


@dataclass
class Document:
    """One tokenized sample.

    Attributes:
        ids: (n,) int64 token ids.
        loss_mask: (n,) bool, True where the token is a training *target* (predicted from the tokens before it);
            None trains on every token but the first.
    """

    ids: np.ndarray
    loss_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def tokenize_texts(rows: Iterator[tuple[str, Any]], encode: Callable[[str], list[int]], eos_id: int | None,
                   ) -> list[Document]:
    """Pretraining documents: `encode(text) + [eos]` per row; non-string rows raise naming file and line."""
    docs = []
    for where, text in rows:
        if not isinstance(text, str):
            raise DataError(f"{where}: expected a string, got {type(text).__name__}")
        ids = list(encode(text))
        if eos_id is not None:
            ids.append(eos_id)
        if len(ids) >= 2:
            docs.append(Document(np.asarray(ids, dtype=np.int64)))
    return docs


# ----------------------------------------------------------------------------------------------------------------
# Blend sampler


class BlendSampler:
    """Deterministic, resumable stream of documents from weighted sources with curriculum phases.

    Args:
        sources: Source name -> documents.
        phases: `(start, weights)` pairs, start a fraction of `total_tokens`; weights are token shares per source.
        total_tokens: Tokens the whole run consumes (steps * global batch * seq_len) to place the phase switches.
        seed: Seeds the per-source, per-epoch permutations.
    """

    def __init__(self, sources: dict[str, Sequence[Document]], phases: Sequence[tuple[float, dict[str, float]]],
                 total_tokens: int, seed: int = 0) -> None:
        if not sources:
            raise DataError("a blend needs at least one source")
        for name, docs in sources.items():
            if len(docs) == 0:
                raise DataError(f"source `{name}` has no documents")
        self.sources = dict(sources)
        self.names = list(self.sources)
        if not phases:
            phases = [(0.0, {n: 1.0 for n in self.names})]
        self.phases = [(float(s), {n: float(w.get(n, 0.0)) for n in self.names}) for s, w in phases]
        for s, w in self.phases:
            if sum(w.values()) <= 0:
                raise DataError(f"phase at {s}: weights sum to zero")
        self.total_tokens = max(int(total_tokens), 1)
        self.seed = seed
        self.tokens = 0  # tokens emitted overall
        self.phase_tokens = {n: 0 for n in self.names}  # tokens per source within the current phase
        self.phase = 0
        self.epoch = {n: 0 for n in self.names}
        self.pos = {n: 0 for n in self.names}
        self._perm_cache: dict[tuple[str, int], np.ndarray] = {}

    def _perm(self, name: str, epoch: int) -> np.ndarray:
        key = (name, epoch)
        if key not in self._perm_cache:
            idx = self.names.index(name)
            rng = np.random.default_rng([self.seed, idx, epoch])
            self._perm_cache = {key: rng.permutation(len(self.sources[name]))}  # keep one: epochs only move forward
        return self._perm_cache[key]

    def current_phase(self) -> int:
        frac = self.tokens / self.total_tokens
        i = 0
        for j, (start, _) in enumerate(self.phases):
            if frac >= start:
                i = j
        return i

    def next_source(self) -> str:
        """The source furthest behind its token share in the current phase (ties: first listed)."""
        phase = self.current_phase()
        if phase != self.phase:
            self.phase = phase
            self.phase_tokens = {n: 0 for n in self.names}
        w = self.phases[self.phase][1]
        total_w = sum(w.values())
        spent = sum(self.phase_tokens.values())
        best, best_deficit = None, -float("inf")
        for n in self.names:
            if w[n] <= 0:
                continue
            deficit = (w[n] / total_w) * (spent + 1) - self.phase_tokens[n]
            if deficit > best_deficit:
                best, best_deficit = n, deficit
        assert best is not None
        return best

    def __iter__(self) -> BlendSampler:
        return self

    def __next__(self) -> tuple[str, Document]:
        name = self.next_source()
        docs = self.sources[name]
        perm = self._perm(name, self.epoch[name])
        doc = docs[int(perm[self.pos[name]])]
        self.pos[name] += 1
        if self.pos[name] == len(docs):
            self.epoch[name] += 1
            self.pos[name] = 0
        self.tokens += len(doc)
        self.phase_tokens[name] += len(doc)
        return name, doc

    def state_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "phase": self.phase, "phase_tokens": dict(self.phase_tokens),
                "epoch": dict(self.epoch), "pos": dict(self.pos), "seed": self.seed,
                "sizes": {n: len(d) for n, d in self.sources.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sizes = {n: len(d) for n, d in self.sources.items()}
        if state.get("sizes") != sizes or state.get("seed") != self.seed:
            raise DataError(f"sampler checkpoint was written for other data (sizes {state.get('sizes')}, seed "
                            f"{state.get('seed')}); this run has sizes {sizes}, seed {self.seed}")
        self.tokens = int(state["tokens"])
        self.phase = int(state["phase"])
        self.phase_tokens = {n: int(v) for n, v in state["phase_tokens"].items()}
        self.epoch = {n: int(v) for n, v in state["epoch"].items()}
        self.pos = {n: int(v) for n, v in state["pos"].items()}


# ----------------------------------------------------------------------------------------------------------------
# Packing


def _labels(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Targets aligned with inputs: labels[t] = ids[t+1] where ids[t+1] is trained, else IGNORE_INDEX."""
    lab = np.full(len(ids), IGNORE_INDEX, dtype=np.int64)
    lab[:-1] = ids[1:]
    if mask is not None:
        lab[:-1][~mask[1:]] = IGNORE_INDEX
    return lab


class PackedBatches:
    """Global batches of fixed-length rows from a document stream; resumable.

    Packed mode concatenates documents into rows of exactly `seq_len` tokens; a document that does not fit
    continues in the next row (`split_docs=True`, pretraining) or starts a fresh row with the remainder padded
    (`split_docs=False`, SFT: a sample is never cut in two). Padded mode puts one document per row.

    Each batch is a dict of (rows, seq_len) tensors:
        input_ids: token ids (pad id 0 in padding).
        labels: pre-shifted targets, IGNORE_INDEX where nothing is learned.
        document_ids: a new id per document in the row; padding gets its own id (-1 on padded rows' tail is
            avoided so the backbone's boundary rule also isolates padding).
        attention_mask: 1 on real tokens, 0 on padding (trailing; packed rows only pad at the end).

    Args:
        sampler: The document stream (its state is part of this object's state).
        seq_len: Row length.
        rows: Rows per global batch.
        pack: Concatenate documents (True) or one per row (False).
        split_docs: In packed mode, let a document continue into the next row.
        pad_id: Token used for padding.
    """

    def __init__(self, sampler: BlendSampler, seq_len: int, rows: int, *, pack: bool = True, split_docs: bool = True,
                 pad_id: int = 0) -> None:
        self.sampler, self.seq_len, self.rows = sampler, seq_len, rows
        self.pack, self.split_docs, self.pad_id = pack, split_docs, pad_id
        # A document cut at the end of the last row, waiting for the next batch: (ids, mask-or-None).
        self._carry: tuple[np.ndarray, np.ndarray | None] | None = None

    def _next_doc(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._carry is not None:
            d, self._carry = self._carry, None
            return d
        _, doc = next(self.sampler)
        ids = doc.ids[: self.seq_len] if not (self.pack and self.split_docs) else doc.ids
        mask = None if doc.loss_mask is None else doc.loss_mask[: len(ids)]
        return ids, mask

    def _row(self) -> dict[str, np.ndarray]:
        S = self.seq_len
        ids = np.full(S, self.pad_id, dtype=np.int64)
        labels = np.full(S, IGNORE_INDEX, dtype=np.int64)
        docs = np.zeros(S, dtype=np.int64)
        attn = np.zeros(S, dtype=np.int64)
        t, doc_id = 0, 0
        while t < S:
            d_ids, d_mask = self._next_doc()
            room = S - t
            if len(d_ids) > room:
                if self.pack and self.split_docs:
                    # The tail continues in the next row; its first token is predicted from nothing, as in any row.
                    self._carry = (d_ids[room:], None if d_mask is None else d_mask[room:])
                    d_ids, d_mask = d_ids[:room], None if d_mask is None else d_mask[:room]
                elif t > 0:
                    self._carry = (d_ids, d_mask)  # starts the next row whole
                    break
                else:
                    d_ids, d_mask = d_ids[:room], None if d_mask is None else d_mask[:room]
            n = len(d_ids)
            ids[t:t + n] = d_ids
            labels[t:t + n] = _labels(d_ids, d_mask)
            docs[t:t + n] = doc_id
            attn[t:t + n] = 1
            t += n
            doc_id += 1
            if not self.pack:
                break
        docs[t:] = doc_id  # padding is its own document: nothing attends across into it
        return {"input_ids": ids, "labels": labels, "document_ids": docs, "attention_mask": attn}

    def __iter__(self) -> PackedBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        rows = [self._row() for _ in range(self.rows)]
        return {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}

    def state_dict(self) -> dict[str, Any]:
        carry = None
        if self._carry is not None:
            ids, mask = self._carry
            carry = {"ids": ids.tolist(), "mask": None if mask is None else mask.astype(int).tolist()}
        return {"sampler": self.sampler.state_dict(), "carry": carry}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        c = state.get("carry")
        self._carry = None if c is None else (np.asarray(c["ids"], dtype=np.int64),
                                              None if c["mask"] is None else np.asarray(c["mask"], dtype=bool))


def shard_batch(batch: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    """This rank's contiguous slice of a global batch (rows must divide evenly)."""
    n = next(iter(batch.values())).shape[0]
    if n % world:
        raise ValueError(f"global batch of {n} rows does not split over {world} ranks")
    k = n // world
    return {key: v[rank * k:(rank + 1) * k] for key, v in batch.items()}


def split_micro(batch: dict[str, torch.Tensor], micro: int) -> list[dict[str, torch.Tensor]]:
    """Split rows into micro-batches of `micro` rows for gradient accumulation."""
    n = next(iter(batch.values())).shape[0]
    return [{k: v[i:i + micro] for k, v in batch.items()} for i in range(0, n, micro)]
