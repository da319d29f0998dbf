"""JSONL reading shared by every part of zoo (training data, eval tasks, AQA items, curation stages, RL prompts).

One line = one JSON object; blank lines are skipped; every error names `file:line`. Callers choose the error class
(their own `ZooError` subclass) so their users can catch area-specific errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import ZooError


def parse_line(line: str, where: str, error: type[Exception] = ZooError, *, require_object: bool = True) -> Any:
    """Parse one JSONL line; `where` ("file:line") starts the error message."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise error(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    if require_object and not isinstance(obj, dict):
        raise error(f"{where}: each line must be a JSON object, got {type(obj).__name__}")
    return obj


def iter_jsonl(path: str | Path, error: type[Exception] = ZooError, *, require_object: bool = True
               ) -> Iterator[tuple[str, Any]]:
    """Yield `("file:line", object)` for each non-blank line of a JSONL file.

    Raises:
        error: the file is missing or unreadable, or a line is not (an object of) valid JSON.
    """
    path = Path(path)
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: input file not found") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    where = f"{path}:{lineno}"
                    yield where, parse_line(line, where, error, require_object=require_object)
        except UnicodeDecodeError as e:
            raise error(f"{path}: not UTF-8 text ({e.reason})") from None
