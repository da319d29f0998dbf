"""BFCL offline: the data that the ``bfcl-eval`` package ships, judged by its own AST checker.

Tool-N1 reports BFCL (algorithms.md §7): Non-Live and Live x Simple / Multiple / Parallel / Parallel-Multiple,
overall = the official average. We score the single-turn AST categories and the relevance ones; multi-turn,
memory and web-search categories need BFCL's executable backends and are not run here.

``bfcl-eval`` pins old versions of many packages (numpy 1.26, an OpenAI/Anthropic/... client zoo), so it is
installed without its dependencies (``pip install --no-deps bfcl-eval``; see docs/eval.md). Its checker module
needs none of them except one import: ``bfcl_eval.constants.model_config``, which pulls in every model
handler only to look up whether a model's function names had ``.`` replaced by ``_``. We install a small
stand-in for that one module before importing the checker: our models keep dotted names as written.
"""

from __future__ import annotations

import functools
import json
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

__all__ = ["AST_CATEGORIES", "RELEVANCE_CATEGORIES", "load_category", "check", "ground_truth_calls", "summary"]

AST_CATEGORIES: tuple[str, ...] = (
    "simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
)
# Irrelevance: the right answer is no call at all. Relevance: any call counts.
RELEVANCE_CATEGORIES: tuple[str, ...] = ("irrelevance", "live_irrelevance", "live_relevance")
_PREFIX = "BFCL_v4_"
_MODEL_NAME = "zoo"


class BFCLMissingError(ZooError):
    """bfcl-eval is not installed."""


@functools.cache
def _package() -> tuple[Path, Callable[..., dict], Any]:
    """(data dir, ast_checker, Language enum), importing the checker with the model-config stand-in."""
    try:
        import bfcl_eval
        import bfcl_eval.constants  # noqa: F401 - the parent package must exist before the stand-in
    except ImportError as e:
        raise BFCLMissingError(
            "BFCL needs the bfcl-eval package: pip install --no-deps bfcl-eval (see docs/eval.md)"
        ) from e

    class _NoRename:
        underscore_to_dot = False

    class _AnyModel(dict):
        def __missing__(self, key: str) -> _NoRename:
            return _NoRename()

    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stand_in = types.ModuleType(name)
        stand_in.MODEL_CONFIG_MAPPING = _AnyModel()
        sys.modules[name] = stand_in
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return Path(bfcl_eval.__file__).parent / "data", ast_checker, Language


@dataclass(frozen=True)
class Entry:
    """One BFCL test: the conversation, the callable functions and (for AST categories) the possible answers."""

    id: str
    category: str
    question: list
    functions: list
    possible_answer: list | None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ZooError(f"{path}:{n}: not valid JSON ({e.msg})") from e
    return rows


def load_category(category: str, limit: int | None = None) -> list[Entry]:
    """The shipped BFCL entries of one category (the first ``limit`` of them).

    Args:
        category: One of `AST_CATEGORIES` or `RELEVANCE_CATEGORIES`.
        limit: Keep only the first entries.

    Returns:
        Entries with their possible answers attached.
    """
    if category not in AST_CATEGORIES + RELEVANCE_CATEGORIES:
        raise ZooError(f"unsupported BFCL category {category!r}; known: {', '.join(AST_CATEGORIES + RELEVANCE_CATEGORIES)}")
    data, _, _ = _package()
    rows = _read_jsonl(data / f"{_PREFIX}{category}.json")[:limit]
    answers: dict[str, list] = {}
    if category in AST_CATEGORIES:
        answers = {r["id"]: r["ground_truth"] for r in _read_jsonl(data / "possible_answer" / f"{_PREFIX}{category}.json")}
    out = []
    for r in rows:
        if category in AST_CATEGORIES and r["id"] not in answers:
            raise ZooError(f"BFCL {category}: entry {r['id']} has no possible answer")
        out.append(Entry(r["id"], category, r["question"], r["function"], answers.get(r["id"])))
    return out


def _language(category: str) -> Any:
    _, _, language = _package()
    if category.endswith("java"):
        return language.JAVA
    if category.endswith("javascript"):
        return language.JAVASCRIPT
    return language.PYTHON


def _bfcl_value(value: Any, category: str) -> Any:
    # BFCL's Java / JavaScript answers are source literals that its checker parses back from strings.
    if category.endswith(("java", "javascript")) and not isinstance(value, str):
        return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")
    return value


def check(entry: Entry, calls: Sequence[dict] | None) -> tuple[bool, str]:
    """Judge parsed calls with BFCL's checker.

    Args:
        entry: The BFCL entry.
        calls: Calls as ``{"name", "arguments"}`` dicts; None when the output held no parseable call block.

    Returns:
        (correct, BFCL's error text or "").
    """
    calls = list(calls or [])
    if entry.category in ("irrelevance", "live_irrelevance"):
        return (not calls, "" if not calls else "a function was called")
    if entry.category == "live_relevance":
        return (bool(calls), "" if calls else "no function was called")
    _, ast_checker, _ = _package()
    model_output = []
    for c in calls:
        args = c.get("arguments")
        if not isinstance(args, dict):
            return False, f"arguments of {c.get('name')!r} are not an object"
        model_output.append({c["name"]: {k: _bfcl_value(v, entry.category) for k, v in args.items()}})
    try:
        res = ast_checker(entry.functions, model_output, entry.possible_answer, _language(entry.category),
                          entry.category, _MODEL_NAME)
    except Exception as e:  # the checker assumes well-typed input; malformed model output must just fail
        return False, f"checker error: {e!r}"
    return bool(res["valid"]), "; ".join(map(str, res.get("error", [])))


def ground_truth_calls(entry: Entry) -> list[dict[str, Any]]:
    """The ground truth as calls: the first non-empty accepted value of each argument ("" = may be omitted)."""
    calls = []
    for item in entry.possible_answer or []:
        ((name, params),) = item.items()
        calls.append({"name": name, "arguments": _choose(params)})
    return calls


def _choose(options_by_key: dict) -> dict:
    """{key: [accepted values]} -> {key: first non-empty value}, recursively (nested objects list options too)."""
    out = {}
    for key, options in options_by_key.items():
        picked = [o for o in options if o != ""] if isinstance(options, list) else [options]
        if picked:
            out[key] = _nested(picked[0])
    return out


def _nested(value: Any) -> Any:
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return _choose(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_nested(v) for v in value]
    return value


def summary(per_category: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Accuracy per category plus BFCL's group averages (unweighted means of the categories run).

    Args:
        per_category: category -> (correct, total).

    Returns:
        category and group names -> accuracy in [0, 1].
    """
    acc = {c: (k / n if n else 0.0) for c, (k, n) in per_category.items()}
    groups = {
        "non_live": [c for c in acc if not c.startswith("live") and c in AST_CATEGORIES + ("irrelevance",)],
        "live": [c for c in acc if c.startswith("live")],
    }
    out = dict(acc)
    for g, cats in groups.items():
        if cats:
            out[g] = sum(acc[c] for c in cats) / len(cats)
    if acc:
        out["overall"] = sum(acc.values()) / len(acc)
    return out
