"""Code reward (AceReason, algorithms.md §6): 1 iff the last fenced program passes **all** of the row's tests in
the `zoo.eval.sandbox` (stdin/stdout tests, or function-call tests with `fn_name`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.eval import code as code_verifier
from zoo.training.rewards import need


def reward(response: str, row: Mapping[str, Any]) -> float:
    """Binary code reward; `row["tests"]` is a list of test cases, `row.get("fn_name")` selects call-style tests."""
    return code_verifier.score(response, list(need(row, "tests")), fn_name=row.get("fn_name"))
