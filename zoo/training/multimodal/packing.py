"""Length-balanced packing of multimodal samples into rows with per-sample boundaries.

Eagle 2.5 trains on packed sequences: several ADS-fitted samples share one row of at most the stage length, each
attending only to itself (block-diagonal attention; our backbone also resets the Mamba conv and SSM state at each
change of `document_ids`). Packing is length-balanced: from a buffer of samples, the longest goes first into the
row with the fewest tokens that still has room, so rows of one batch carry similar token counts (similar compute
per rank), and a sample is never cut in two.

Media ride along per row so that any row slicing (`data.shard_batch`, `data.split_micro`) keeps ids and media
together: every media tensor of a row's samples is concatenated along its first dim (tiles or clips) and padded
to the batch's largest row, with `media_counts` (rows,) telling how many entries of each row are real.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from zoo.training.data import IGNORE_INDEX
from zoo.training.multimodal.sample import MMSample, shifted_labels

__all__ = ["balance_rows", "collate_rows", "unpack_media"]


def balance_rows(lengths: Sequence[int], rows: int, seq_len: int) -> tuple[list[list[int]], list[int]]:
    """Assign samples to `rows` rows of capacity `seq_len`, longest first, each to the emptiest row it fits.

    Args:
        lengths: Token count of each buffered sample (each <= seq_len).
        rows: Rows to fill.
        seq_len: Row capacity.

    Returns:
        (rows_of_indices, leftover): sample indices per row (in buffer order within a row, so packing is stable),
        and the indices that fit nowhere this time (they wait for the next batch).
    """
    out: list[list[int]] = [[] for _ in range(rows)]
    used = [0] * rows
    left = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        if lengths[i] > seq_len:
            raise ValueError(f"sample {i} has {lengths[i]} tokens > row length {seq_len}; fit it with ADS first")
        fits = [r for r in range(rows) if used[r] + lengths[i] <= seq_len]
        if not fits:
            left.append(i)
            continue
        r = min(fits, key=lambda r: (used[r], r))
        out[r].append(i)
        used[r] += lengths[i]
    return [sorted(r) for r in out], sorted(left)


def _pad_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    pad: list[int] = []
    for have, want in zip(reversed(t.shape), reversed(shape)):
        pad += [0, want - have]
    return torch.nn.functional.pad(t, pad)


def collate_rows(rows: Sequence[Sequence[MMSample]], *, pad_id: int = 0, multiple: int = 8) -> dict[str, Tensor]:
    """Build one batch from rows of samples.

    Args:
        rows: Samples per row (a row may be empty: it is then all padding).
        pad_id: Token id of padding.
        multiple: Row length is the longest row rounded up to this (the stage length bounds it from above).

    Returns:
        input_ids, labels, document_ids, attention_mask: (rows, l); for each media key k: (rows, n_max, ...)
        padded with zeros, and media_counts (rows,) = real entries per row.
    """
    width = max((sum(len(s) for s in r) for r in rows), default=1)
    width = max(multiple, -(-width // multiple) * multiple)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    docs = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    keys = sorted({k for r in rows for s in r for k in s.media})
    # Trailing dims (e.g. mel frames of clips of different lengths) are padded to the batch's largest.
    tail = {k: [max(s.media[k].shape[d] for r in rows for s in r if k in s.media)
                for d in range(1, next(s.media[k].ndim for r in rows for s in r if k in s.media))] for k in keys}
    per_row: dict[str, list[Tensor | None]] = {k: [] for k in keys}
    counts = torch.zeros(n, dtype=torch.long)
    for i, row in enumerate(rows):
        at = 0
        for d, s in enumerate(row):
            ln = len(s)
            ids[i, at : at + ln] = s.input_ids
            labels[i, at : at + ln] = shifted_labels(s.input_ids, s.loss_mask)
            docs[i, at : at + ln] = d
            mask[i, at : at + ln] = 1
            at += ln
        docs[i, at:] = len(row)  # padding is a document of its own: nothing leaks into or out of it
        for k in keys:
            parts = [_pad_to(s.media[k], [s.media[k].shape[0], *tail[k]]) for s in row if k in s.media]
            per_row[k].append(torch.cat(parts) if parts else None)
        if keys:
            counts[i] = sum(int(s.media[keys[0]].shape[0]) for s in row if keys[0] in s.media)
    out = {"input_ids": ids, "labels": labels, "document_ids": docs, "attention_mask": mask}
    for k in keys:
        present = [t for t in per_row[k] if t is not None]
        shape = [max(t.shape[d] for t in present) for d in range(present[0].ndim)]
        empty = present[0].new_zeros([0, *shape[1:]])
        out[k] = torch.stack([_pad_to(t if t is not None else empty, shape) for t in per_row[k]])
    if keys:
        out["media_counts"] = counts
    return out


def unpack_media(batch: dict[str, Tensor], key: str) -> Tensor | None:
    """The real entries of a row-padded media tensor, rows in order: (rows, n_max, ...) -> (sum counts, ...)."""
    if key not in batch:
        return None
    t, counts = batch[key], batch["media_counts"]
    parts = [t[r, : int(c)] for r, c in enumerate(counts.tolist())]
    return torch.cat(parts) if parts else t[:0, 0]


def iter_packed(samples: Iterator[MMSample], *, rows: int, seq_len: int, buffer: int, pad_id: int = 0
                ) -> Iterator[tuple[dict[str, Tensor], list[list[MMSample]]]]:
    """Endless packed batches from a sample stream (see `balance_rows`); yields (batch, rows of samples)."""
    pool: list[MMSample] = []
    while True:
        while len(pool) < buffer:
            pool.append(next(samples))
        assign, left = balance_rows([len(s) for s in pool], rows, seq_len)
        packed = [[pool[i] for i in r] for r in assign]
        pool = [pool[i] for i in left]
        yield collate_rows(packed, pad_id=pad_id), packed
