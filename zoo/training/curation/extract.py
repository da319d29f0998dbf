"""Page -> text extraction: decode, detect type, render HTML with a real `lynx -dump` process (Nemotron-CC-Math).

The published flags are used verbatim (`LYNX_FLAGS`): `-stdin` reads the page from a pipe, `-nolist` drops the
link index, `-width=10000` stops lynx from re-wrapping lines (which would break code and long formulas),
`-assume_charset/-display_charset=utf-8` keep characters as they are, `-localhost` forbids network access and
`-force_html` renders even pages that do not look like HTML. Each call has a 20-second timeout, as published.

Before lynx, `mathhtml.rewrite_math` turns MathJax / KaTeX / MathML / TeX-image math into `$tex$` text (see that
module for why). After lynx, lines indented by hundreds of columns (lynx centres `<h1>` within the 10,000-column
page) are left-aligned; all other indentation, in particular `<pre>` code, is kept byte for byte.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError
from zoo.training.curation.decode import decode_bytes, detect_type, flatten_notebook, looks_binary
from zoo.training.curation.mathhtml import rewrite_math
from zoo.training.curation.stage import Drop, Result, require

LYNX_FLAGS: tuple[str, ...] = (
    "-dump", "-stdin", "-nolist", "-width=10000", "-assume_charset=utf-8", "-display_charset=utf-8",
    "-localhost", "-force_html",
)
LYNX_TIMEOUT_S = 20.0
# Indentation beyond this is lynx centring a heading inside the 10,000-column page, not content.
_CENTRED_INDENT = 200
_BLANK_RUNS = re.compile(r"\n{3,}")


class LynxMissingError(ZooError):
    """lynx is not installed; the message says how to install it."""


def find_lynx(path: str | None = None) -> str:
    """Return the lynx executable, or raise `LynxMissingError` with the install hint."""
    exe = shutil.which(path or "lynx")
    if exe is None:
        raise LynxMissingError(
            f"lynx executable {path or 'lynx'!r} not found on PATH; the CC-Math HTML stage renders pages with a real "
            "lynx process. Install it (Debian/Ubuntu: apt-get install lynx; macOS: brew install lynx) or pass "
            "--lynx /path/to/lynx."
        )
    return exe


def lynx_dump(page: str, *, lynx: str | None = None, timeout: float = LYNX_TIMEOUT_S) -> str:
    """Render HTML to text with `lynx -dump` and the published flags.

    Args:
        page: HTML text (already math-rewritten if wanted).
        lynx: lynx executable; found on PATH when None.
        timeout: seconds before the process is killed.

    Raises:
        LynxMissingError: lynx is not installed.
        subprocess.TimeoutExpired: lynx ran past `timeout`.
        RuntimeError: lynx exited non-zero (its stderr is in the message).
    """
    exe = find_lynx(lynx)
    proc = subprocess.run(
        [exe, *LYNX_FLAGS], input=page.encode("utf-8"), capture_output=True, timeout=timeout, check=False,
        # lynx reads config and may try a terminal; a fixed TERM and no inherited LYNX_CFG keep runs reproducible.
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "HOME": "/nonexistent"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lynx exited {proc.returncode}: {proc.stderr.decode('utf-8', 'replace')[:500]}")
    return _tidy(proc.stdout.decode("utf-8", errors="replace"))


def _tidy(text: str) -> str:
    lines = []
    for line in text.splitlines():
        line = line.rstrip()
        if len(line) - len(line.lstrip(" ")) > _CENTRED_INDENT:
            line = line.lstrip(" ")
        lines.append(line)
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


@dataclass
class ExtractStage:
    """JSONL stage: raw pages (`payload_b64` or `html`/`raw_text`) -> `text` with `content_type` and `charset`.

    Input fields: `payload_b64` (raw bytes, from `warc.ingest`) or `html` (already decoded); optional `url`,
    `mime`, `header_charset`. Output: the input minus the payload, plus `text`, `content_type`, `charset`,
    `repaired`. Drops (reasons): `binary` (not text), `lynx_timeout`, `lynx_error`, `empty`.
    """

    name: str = "extract"
    batch_size: int = 16
    lynx: str | None = None
    timeout: float = LYNX_TIMEOUT_S
    rewrite_math: bool = True
    drop_boilerplate: bool = False
    min_chars: int = 1

    def __post_init__(self) -> None:
        self.lynx = find_lynx(self.lynx)  # fail before reading any input when lynx is missing

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        return [self.process(r, w) for r, w in zip(records, wheres)]

    def process(self, rec: dict[str, Any], where: str) -> Result:
        if "payload_b64" in rec:
            try:
                raw = base64.b64decode(require(rec, "payload_b64", where), validate=True)
            except ValueError as e:
                raise ZooError(f"{where}: field 'payload_b64' is not valid base64 ({e})") from None
            if looks_binary(raw):
                return Drop("binary")
            dec = decode_bytes(raw, header_charset=rec.get("header_charset"))
            text, charset, repaired = dec.text, dec.charset, dec.repaired
        elif "html" in rec:
            text, charset, repaired = require(rec, "html", where), "utf-8", False
        else:
            raise ZooError(f"{where}: record has neither 'payload_b64' nor 'html' (fields: {sorted(rec)})")
        ctype = detect_type(text, mime=rec.get("mime"), url=rec.get("url"))
        if ctype == "other":
            return Drop("binary")
        if ctype == "notebook":
            try:
                out = flatten_notebook(text, where)
            except ValueError:
                return Drop("bad_notebook")
        elif ctype == "html":
            page = rewrite_math(text, drop_boilerplate=self.drop_boilerplate) if self.rewrite_math else text
            try:
                out = lynx_dump(page, lynx=self.lynx, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return Drop("lynx_timeout")
            except RuntimeError:
                return Drop("lynx_error")
        else:
            out = text
        if len(out.strip()) < self.min_chars:
            return Drop("empty")
        res = {k: v for k, v in rec.items() if k not in ("payload_b64", "html")}
        res.update(text=out, content_type=ctype, charset=charset, repaired=repaired)
        return res
