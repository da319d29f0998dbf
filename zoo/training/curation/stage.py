"""Streaming JSONL -> JSONL stages: atomic, resumable, with kept/dropped counts and reasons.

Every curation step (extract, cleanup, quality, dedup, decontamination, CrossThink) is a `Stage` run by
`run_stage`. The runner owns the file handling so each stage only says what happens to one batch of records:

* Input is read line by line; a bad line raises `ZooError` naming `file:line`.
* Output goes to `OUT.part`; a progress sidecar `OUT.progress.json` records how many input rows and output bytes
  are final after each batch. A crash or Ctrl-C leaves both; the next run truncates the part file to the recorded
  byte count, skips the recorded input rows and carries on (the stage may rebuild state from what it already
  kept, e.g. the dedup index). On success the part file is renamed to OUT and the counts are written atomically
  to `OUT.stats.json`.
* A finished output (OUT and its stats present) is not recomputed unless `overwrite=True`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from zoo.errors import ZooError
from zoo.jsonl import iter_jsonl

# ---------------------------------------------------------------------------------------------------------------
# Records and file helpers
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drop:
    """A stage's verdict that a record is dropped, with a short machine-readable reason (counted per reason)."""

    reason: str


Result = dict[str, Any] | Drop


def read_jsonl(path: str | Path, *, start: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield `(where, record)` for each non-blank line of a JSONL file, `where` being `"file:line"`.

    Args:
        path: JSONL file; each line one JSON object.
        start: number of leading records to skip (used when resuming).

    Raises:
        ZooError: the file is missing, or a line is not a JSON object (message names file and line).
    """
    for seen, (where, rec) in enumerate(iter_jsonl(path, ZooError), 1):
        if seen > start:
            yield where, rec


def require(rec: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    """Return `rec[key]`, raising a `ZooError` naming the row and field when it is missing or of the wrong type."""
    if key not in rec:
        raise ZooError(f"{where}: missing field {key!r} (fields present: {sorted(rec)})")
    val = rec[key]
    if not isinstance(val, kind):
        raise ZooError(f"{where}: field {key!r} should be {getattr(kind, '__name__', kind)}, got {type(val).__name__}")
    return val


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a small text file via a temp file in the same directory + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records to a JSONL file atomically; returns the number written."""
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    write_text_atomic(path, "".join(lines))
    return len(lines)


# ---------------------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------------------


@runtime_checkable
class Stage(Protocol):
    """One curation step. `process_batch` maps each input record to an output record or a `Drop`."""

    name: str
    batch_size: int

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        """Return one result per input record, in order."""
        ...


class MapStage:
    """A stage from a per-record function `fn(record, where) -> dict | Drop`."""

    def __init__(self, name: str, fn: Any, batch_size: int = 64) -> None:
        self.name = name
        self.fn = fn
        self.batch_size = batch_size

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        return [self.fn(r, w) for r, w in zip(records, wheres)]


@dataclass
class StageStats:
    """Counts of one stage run; `dropped` maps reason -> count."""

    stage: str
    input: str
    output: str
    rows_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    resumed_from_row: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "input": self.input,
            "output": self.output,
            "rows_in": self.rows_in,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "resumed_from_row": self.resumed_from_row,
        }

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        return f"{self.stage}: {self.rows_in} in, {self.kept} kept, {sum(self.dropped.values())} dropped ({reasons})"


def stats_path(out: str | Path) -> Path:
    return Path(str(out) + ".stats.json")


def run_stage(
    stage: Stage,
    inp: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_batches: int | None = None,
) -> StageStats:
    """Run `stage` over the JSONL file `inp`, writing kept records to `out`; resumable after an interruption.

    Args:
        stage: the step to run.
        inp: input JSONL.
        out: output JSONL (written as `out.part`, renamed when complete; counts in `out.stats.json`).
        overwrite: recompute even if `out` is already complete.
        max_batches: stop (without finishing) after this many batches; the run can be resumed later. Used to test
            resumption and to process a large file in bounded sessions.

    Returns:
        The counts of this stage over the whole input (including rows done before a resume).
    """
    inp, out = Path(inp), Path(out)
    part, progress, stats_file = Path(str(out) + ".part"), Path(str(out) + ".progress.json"), stats_path(out)
    if out.exists() and stats_file.exists() and not overwrite:
        data = json.loads(stats_file.read_text(encoding="utf-8"))
        st = StageStats(stage.name, str(inp), str(out), data["rows_in"], data["kept"], Counter(data["dropped"]))
        st.resumed_from_row = data["rows_in"]
        return st
    out.parent.mkdir(parents=True, exist_ok=True)
    st = StageStats(stage.name, str(inp), str(out))
    if overwrite or not (part.exists() and progress.exists()):
        part.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
    else:
        # Resume: the progress file is written after each flushed batch, so everything before its byte count is
        # final. Bytes after it belong to a batch that did not finish and are cut off.
        prog = json.loads(progress.read_text(encoding="utf-8"))
        if prog.get("stage") != stage.name or prog.get("input") != str(inp):
            raise ZooError(
                f"{progress}: left by stage {prog.get('stage')!r} on {prog.get('input')!r}, not {stage.name!r} on "
                f"{str(inp)!r}; delete it or pass overwrite"
            )
        with part.open("r+b") as f:
            f.truncate(prog["bytes_out"])
        st.rows_in, st.kept, st.dropped = prog["rows_in"], prog["kept"], Counter(prog["dropped"])
        st.resumed_from_row = st.rows_in
        restore = getattr(stage, "restore", None)
        if restore is not None:
            restore(rec for _, rec in read_jsonl(part))

    batches = 0
    with part.open("ab") as f:
        for recs, wheres in _batched(read_jsonl(inp, start=st.rows_in), stage.batch_size):
            results = stage.process_batch(recs, wheres)
            if len(results) != len(recs):
                raise RuntimeError(f"stage {stage.name} returned {len(results)} results for {len(recs)} records")
            for res in results:
                if isinstance(res, Drop):
                    st.dropped[res.reason] += 1
                else:
                    f.write((json.dumps(res, ensure_ascii=False) + "\n").encode("utf-8"))
                    st.kept += 1
            st.rows_in += len(recs)
            f.flush()
            os.fsync(f.fileno())
            prog = st.to_json() | {"bytes_out": f.tell()}
            write_text_atomic(progress, json.dumps(prog))
            batches += 1
            if max_batches is not None and batches >= max_batches:
                return st
    os.replace(part, out)
    write_text_atomic(stats_file, json.dumps(st.to_json(), indent=1) + "\n")
    progress.unlink(missing_ok=True)
    return st


def _batched(
    it: Iterator[tuple[str, dict[str, Any]]], n: int
) -> Iterator[tuple[list[dict[str, Any]], list[str]]]:
    recs: list[dict[str, Any]] = []
    wheres: list[str] = []
    for where, rec in it:
        recs.append(rec)
        wheres.append(where)
        if len(recs) >= n:
            yield recs, wheres
            recs, wheres = [], []
    if recs:
        yield recs, wheres
