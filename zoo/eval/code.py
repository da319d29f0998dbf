"""Code verification: run a candidate program against test cases in the sandbox; reward 1 iff all pass.

Two test styles (algorithms.md §6, AceReason code RL):
- stdin/stdout: ``{"input": "<stdin text>", "output": "<expected stdout>"}``; one sandboxed run per case.
- function call: ``{"input": [arg, ...], "output": <value>}`` with ``fn_name``; the function (or a method of
  ``class Solution``, LeetCode style) is called once per case, all cases in one sandboxed run.

Design choice: expected outputs never enter the sandbox. The program only receives inputs and prints results;
the comparison happens here, so a program that tampers with its own harness can at most print wrong answers.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from zoo.eval.sandbox import Limits, RunResult, run_python

__all__ = ["CodeResult", "extract_code", "outputs_match", "run_tests", "score"]

_FENCE_RE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(response: str) -> str | None:
    """The last fenced code block of a response (after any ``</think>``), or None.

    Args:
        response: Model output.

    Returns:
        The code inside the last ```` ```python ```` (or bare ```` ``` ````) fence.
    """
    if "</think>" in response:
        response = response.rsplit("</think>", 1)[1]
    blocks = _FENCE_RE.findall(response)
    return blocks[-1] if blocks else None


def _tokens_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6)


def outputs_match(got: str, expected: str) -> bool:
    """Judge-style comparison: lines with trailing whitespace dropped; else token-wise with float tolerance.

    Args:
        got: The program's stdout.
        expected: The expected stdout.

    Returns:
        True when they match.
    """
    g = [line.rstrip() for line in got.strip().splitlines()]
    e = [line.rstrip() for line in expected.strip().splitlines()]
    if g == e:
        return True
    gt, et = got.split(), expected.split()
    return len(gt) == len(et) and all(_tokens_equal(a, b) for a, b in zip(gt, et))


@dataclass
class CodeResult:
    """Outcome of running a program against its tests.

    Attributes:
        passed: Tests passed (stops at the first failure).
        total: Tests given.
        failure: Why the first failing test failed ("" when all passed).
        runs: The sandbox runs made.
    """

    passed: int
    total: int
    failure: str = ""
    runs: list[RunResult] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total


def _function_harness(program: str, fn_name: str, inputs: list[Any], tag: str) -> str:
    """The candidate followed by a driver that prints one tagged JSON result per call."""
    driver = f"""

def _zoo_main():
    import json as _json, sys as _sys
    _g = globals()
    if "Solution" in _g and hasattr(_g["Solution"], {fn_name!r}):
        _fn = getattr(_g["Solution"](), {fn_name!r})
    else:
        _fn = _g[{fn_name!r}]
    for _args in _json.loads({json.dumps(json.dumps(inputs))}):
        _r = _fn(*_args) if isinstance(_args, list) else _fn(**_args)
        _sys.stdout.write({tag!r} + _json.dumps(_r) + "\\n")
        _sys.stdout.flush()

_zoo_main()
"""
    return program + driver


def _canonical(v: Any) -> Any:
    # JSON turns tuples into lists; compare both sides after the same round trip.
    return json.loads(json.dumps(v))


def run_tests(program: str, tests: list[dict], *, fn_name: str | None = None,
              limits: Limits | None = None) -> CodeResult:
    """Run ``program`` against ``tests``, stopping at the first failure.

    Args:
        program: Python source.
        tests: Test cases, each ``{"input": ..., "output": ...}``.
        fn_name: Function to call (function-call style); None for stdin/stdout style.
        limits: Sandbox limits per run.

    Returns:
        How many passed, why the first failure failed, and the runs.

    Raises:
        ValueError: A test case lacks ``input`` or ``output``.
    """
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ValueError(f"test case {i} must be an object with 'input' and 'output', got {t!r:.80}")
    res = CodeResult(passed=0, total=len(tests))
    if fn_name is not None:
        tag = f"@@zoo-{uuid.uuid4().hex}@@"
        run = run_python(_function_harness(program, fn_name, [t["input"] for t in tests], tag), limits=limits)
        res.runs.append(run)
        results = [line[len(tag):] for line in run.stdout.splitlines() if line.startswith(tag)]
        for i, t in enumerate(tests):
            if i >= len(results):
                res.failure = f"test {i}: no result ({run.status}: {run.stderr.strip()[-200:]})"
                return res
            try:
                got = json.loads(results[i])
            except json.JSONDecodeError:
                res.failure = f"test {i}: unreadable result {results[i][:80]!r}"
                return res
            if got != _canonical(t["output"]):
                res.failure = f"test {i}: got {results[i][:80]}, expected {json.dumps(t['output'])[:80]}"
                return res
            res.passed += 1
        if not run.ok:  # all results right but the run then failed (timeout, stray daemon, ...)
            res.passed = 0
            res.failure = f"run ended with {run.status}"
        return res
    for i, t in enumerate(tests):
        run = run_python(program, stdin=str(t["input"]), limits=limits)
        res.runs.append(run)
        if not run.ok:
            res.failure = f"test {i}: {run.status} ({run.stderr.strip()[-200:]})"
            return res
        if not outputs_match(run.stdout, str(t["output"])):
            res.failure = f"test {i}: wrong output {run.stdout[:80]!r}, expected {str(t['output'])[:80]!r}"
            return res
        res.passed += 1
    return res


def score(response: str, tests: list[dict], *, fn_name: str | None = None, limits: Limits | None = None,
          extract: bool = True) -> float:
    """Binary code reward: 1.0 iff the program (extracted from a response) passes every test.

    Args:
        response: Model output containing a fenced program, or the program itself when ``extract`` is False.
        tests: Test cases.
        fn_name: Function name for function-call tests.
        limits: Sandbox limits per run.
        extract: Take the last fenced code block from ``response``.

    Returns:
        1.0 or 0.0.
    """
    program = extract_code(response) if extract else response
    if not program or not tests:
        return 0.0
    return 1.0 if run_tests(program, tests, fn_name=fn_name, limits=limits).all_passed else 0.0
