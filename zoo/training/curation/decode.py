"""Bytes -> text and content-type detection for web pages (Nemotron-CC-Math, arXiv 2508.15096, section 10 of the
algorithm sheet).

The published pipeline decodes as UTF-8 first, falls back to a detected encoding, repairs mojibake with ftfy and
strips the XML declaration, then routes by type (libmagic + MIME): HTML to lynx, plain text as is, Jupyter
notebooks flattened. We do the same without libmagic: the HTTP `Content-Type` header is a hint, the bytes decide
(a notebook is JSON with `cells`; HTML has tags near the start), because crawled headers are often wrong.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Literal

import charset_normalizer
import ftfy

ContentType = Literal["html", "text", "notebook", "other"]

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>\s*", re.I)
_HTML_SNIFF = re.compile(r"<\s*(!doctype\s+html|html|head|body|div|p|h[1-6]|table|span|math|pre|script)\b", re.I)


@dataclass(frozen=True)
class Decoded:
    """Result of decoding one payload: the text, the charset that decoded it, and whether ftfy changed it."""

    text: str
    charset: str
    repaired: bool


def _declared_charset(data: bytes, header_charset: str | None) -> str | None:
    """The charset the HTTP header or a `<meta charset>` in the first 4 KiB declares, if Python knows it."""
    meta = _META_CHARSET.search(data[:4096])
    for cand in (header_charset, meta.group(1).decode("ascii", "ignore") if meta else None):
        if cand:
            try:
                return codecs.lookup(cand).name
            except LookupError:
                continue
    return None


def decode_bytes(data: bytes, *, header_charset: str | None = None) -> Decoded:
    """Decode a web payload: BOM, then strict UTF-8, then the declared charset, then charset detection; repair.

    UTF-8 goes first (as in the published pipeline) because most pages are UTF-8 whatever they declare, and a
    strict UTF-8 decode of non-UTF-8 bytes almost always fails loudly, so trying it first is safe.

    Args:
        data: raw payload bytes.
        header_charset: charset from the HTTP Content-Type header, if any.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return _finish(data.decode(enc, errors="replace"), enc)
    try:
        return _finish(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(data, header_charset)
    if declared and declared != "utf-8":
        try:
            return _finish(data.decode(declared), declared)
        except (UnicodeDecodeError, LookupError):
            pass
    best = charset_normalizer.from_bytes(data).best()
    enc = best.encoding if best is not None else "utf-8"
    # errors="replace" keeps a page with a few broken bytes; ftfy then repairs what it can.
    return _finish(data.decode(enc, errors="replace"), enc)


def _finish(text: str, charset: str) -> Decoded:
    fixed = ftfy.fix_text(text, normalization="NFC", uncurl_quotes=False, fix_line_breaks=True)
    fixed = _XML_DECL.sub("", fixed, count=1)
    return Decoded(fixed, charset, fixed != text and fixed != _XML_DECL.sub("", text, count=1))


_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13, 27})


def looks_binary(data: bytes) -> bool:
    """True for payloads that are not text in any encoding: NUL bytes, or > 10% control bytes in the first 4 KiB.

    Checked on the bytes, before decoding, because a permissive charset (latin-1 and friends) decodes anything.
    UTF-16 (which has NULs) is recognised by its BOM and passes.
    """
    head = data[:4096]
    if not head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    if b"\x00" in head:
        return True
    return sum(head.count(c) for c in _CONTROL) > 0.1 * len(head)


def detect_type(text: str, *, mime: str | None = None, url: str | None = None) -> ContentType:
    """Classify decoded content as HTML, plain text, a Jupyter notebook, or other (binary-looking).

    Args:
        text: decoded payload.
        mime: MIME type from the HTTP header (a hint only).
        url: page URL (an `.ipynb` suffix is a hint only).
    """
    head = text.lstrip()[:2048]
    if head.startswith("{") and ('"cells"' in head or (url or "").endswith(".ipynb")):
        try:
            nb = json.loads(text)
            if isinstance(nb, dict) and isinstance(nb.get("cells"), list):
                return "notebook"
        except json.JSONDecodeError:
            pass
    if _HTML_SNIFF.search(head) or (mime or "").split(";")[0].strip() in ("text/html", "application/xhtml+xml"):
        return "html"
    sample = text[:4096]
    if sample and sum(ch.isprintable() or ch in "\n\r\t" for ch in sample) / len(sample) < 0.9:
        return "other"
    return "text"


def flatten_notebook(text: str, where: str = "notebook") -> str:
    """Flatten a Jupyter notebook to text: markdown cells as is, code cells verbatim, text outputs after them.

    Raises:
        ValueError: the JSON is not a notebook (message names `where`).
    """
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: notebook is not valid JSON ({e.msg})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError(f"{where}: notebook has no 'cells' list")
    parts: list[str] = []
    for cell in cells:
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if cell.get("cell_type") == "code":
            parts.append(src.rstrip("\n"))
            for out in cell.get("outputs", []) or []:
                # Only text outputs carry content a reader can use; images and widgets are dropped.
                txt = out.get("text") or (out.get("data") or {}).get("text/plain")
                if txt:
                    parts.append("".join(txt) if isinstance(txt, list) else str(txt))
        elif src.strip():
            parts.append(src.strip("\n"))
    return "\n\n".join(p for p in parts if p.strip())
