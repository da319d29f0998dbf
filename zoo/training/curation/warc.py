"""Read crawled pages from WARC files (warcio) or local HTML / text / notebook files into a JSONL of raw payloads.

Nemotron-CC-Math pulls pages out of Common Crawl WARC files by (filename, offset, length); locally we read whole
WARC files (gzip per record or plain) and keep `response` records (and `resource` records, which some tools
write for local captures). The payload is stored base64-encoded, exactly as crawled, so charset detection in the
next stage sees the original bytes. HTTP headers give `mime` and `header_charset` hints.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.training.curation.stage import write_jsonl_atomic

_LOCAL_SUFFIXES = {".html", ".htm", ".xhtml", ".txt", ".md", ".tex", ".ipynb"}
_WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")


def _charset_of(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            return v.strip().strip("\"'")
    return None


def iter_warc(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one raw-page record per WARC `response`/`resource` record with a body.

    Fields: `id` (WARC-Record-ID), `url`, `mime`, `header_charset`, `payload_b64`, `source` (`file#index`).

    Raises:
        ZooError: the file cannot be parsed as WARC (message names the file and record index).
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    path = Path(path)
    i = -1
    try:
        with path.open("rb") as f:
            for i, rec in enumerate(ArchiveIterator(f)):
                if rec.rec_type not in ("response", "resource"):
                    continue
                body = rec.content_stream().read()  # de-chunked and decompressed per HTTP headers
                if not body:
                    continue
                ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else None
                ctype = ctype or rec.rec_headers.get_header("Content-Type")
                yield {
                    "id": rec.rec_headers.get_header("WARC-Record-ID") or f"{path.name}#{i}",
                    "url": rec.rec_headers.get_header("WARC-Target-URI"),
                    "mime": (ctype or "").split(";")[0].strip() or None,
                    "header_charset": _charset_of(ctype),
                    "payload_b64": base64.b64encode(body).decode("ascii"),
                    "source": f"{path}#{i}",
                }
    except ArchiveLoadFailed as e:
        raise ZooError(f"{path}: not a readable WARC file (after record {i}): {e}") from None


def iter_local(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one raw-page record for a local file; the id is a hash of the path so reruns are stable."""
    path = Path(path)
    data = path.read_bytes()
    yield {
        "id": hashlib.sha1(str(path).encode()).hexdigest()[:16],
        "url": path.resolve().as_uri(),
        "mime": None,
        "header_charset": None,
        "payload_b64": base64.b64encode(data).decode("ascii"),
        "source": str(path),
    }


def iter_inputs(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Yield raw-page records from WARC files, local page files, and directories of either (sorted, recursive)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from iter_inputs(sorted(q for q in p.rglob("*") if q.is_file()))
        elif not p.exists():
            raise ZooError(f"{p}: input not found")
        elif p.name.lower().endswith(_WARC_SUFFIXES):
            yield from iter_warc(p)
        elif p.suffix.lower() in _LOCAL_SUFFIXES:
            yield from iter_local(p)


def ingest(paths: Iterable[str | Path], out: str | Path) -> int:
    """Write the raw pages of `paths` to the JSONL file `out` (atomically); returns the number of pages."""
    return write_jsonl_atomic(out, iter_inputs(paths))
