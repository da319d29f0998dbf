"""Math answer verification: extract the final answer, compare it symbolically with the gold answer.

Used for AceReason-style rule rewards (algorithms.md §6: 1 iff the final ``\\boxed{}`` answer is right) and for
math evaluation (avg@k / pass@k in `zoo.eval.runner`).

Design choices:
- Extraction is ours (last ``\\boxed{}`` with balanced braces, then ``Answer:`` forms), comparison is
  math-verify's (sympy-based: fractions, decimals, LaTeX, sets, intervals, equations like ``x=3``). Extracting
  ourselves keeps the rule explicit: math-verify's own extraction would also accept the first number in free
  text, which a reward must not.
- Only the text after the last ``</think>`` is searched when a reasoning block is present: an answer guessed
  inside the reasoning does not count.
- math-verify times out with ``signal.alarm``, which only works in the main thread; elsewhere (a reward worker
  thread) we run without its timeout and rely on the caller's own limit.
"""

from __future__ import annotations

import re
import threading

__all__ = ["extract_boxed", "extract_answer", "is_equivalent", "score"]

# `\boxed{...}` and its framed sibling `\fbox{...}`; `\boxed 5` (no braces) is also valid LaTeX.
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")
# "Answer: 42", "Final answer: $x=3$", "The answer is 7." — the last such line wins.
_ANSWER_RE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is\s*)?[:：]\s*(?P<a>[^\n]+)|(?:final\s+answer|answer)\s+is\s+(?P<b>[^\n]+)",
    re.IGNORECASE,
)
_THINK_END = "</think>"


def _balanced(text: str, start: int) -> str | None:
    """Contents of the brace group whose ``{`` is at ``text[start - 1]``, or None if it never closes."""
    depth = 1
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":  # an escaped brace `\{` does not open or close a group
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """The contents of the last complete ``\\boxed{...}`` (nested braces allowed), or None.

    Args:
        text: Model output.

    Returns:
        The inner LaTeX, stripped; None when there is no complete box.
    """
    found: str | None = None
    for m in _BOX_RE.finditer(text):
        if m.group(1):
            inner = _balanced(text, m.end())
        else:  # `\boxed 5`: one token up to whitespace or `$`
            tok = re.match(r"[^\s$]+", text[m.end() :])
            inner = tok.group(0) if tok else None
        if inner is not None:
            found = inner.strip()
    return found


def _clean_inline(ans: str) -> str:
    ans = ans.strip()
    # Strip the math delimiters and trailing punctuation that wrap a one-line answer.
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if ans.startswith(left) and ans.endswith(right) and len(ans) >= len(left) + len(right):
            ans = ans[len(left) : len(ans) - len(right)].strip()
            break
    ans = ans.rstrip(" .。")
    if ans.startswith("$") and ans.endswith("$") and len(ans) >= 2:
        ans = ans[1:-1].strip()
    return ans


def extract_answer(text: str) -> str | None:
    """The final answer of a response: last ``\\boxed{}``, else the last ``Answer:`` form; None if neither.

    Args:
        text: Model output, possibly with a ``<think>...</think>`` block.

    Returns:
        The answer as LaTeX / plain text, or None.
    """
    if _THINK_END in text:
        text = text.rsplit(_THINK_END, 1)[1]
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    last = None
    for m in _ANSWER_RE.finditer(text):
        last = m.group("a") if m.group("a") is not None else m.group("b")
    if last is None:
        return None
    inner = extract_boxed(last)
    ans = _clean_inline(inner if inner is not None else last)
    return ans or None


def _normalise_text(s: str) -> str:
    s = re.sub(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\ ", "").replace("$", "")
    return re.sub(r"\s+", "", s).lower()


def is_equivalent(pred: str, gold: str) -> bool:
    """Whether two answers are mathematically equal (math-verify), or equal as normalised text.

    Args:
        pred: Extracted answer (LaTeX or plain).
        gold: Reference answer (LaTeX or plain).

    Returns:
        True when equivalent.
    """
    if _normalise_text(pred) == _normalise_text(gold):
        return True
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    limit = 5 if threading.current_thread() is threading.main_thread() else None
    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    # Boxing both sides makes math-verify parse the whole string rather than hunt for a sub-expression.
    g = parse(f"\\boxed{{{gold}}}", extraction_config=cfg, parsing_timeout=limit)
    p = parse(f"\\boxed{{{pred}}}", extraction_config=cfg, parsing_timeout=limit)
    if not g or not p:
        return False
    try:
        return bool(verify(g, p, timeout_seconds=limit))
    except Exception:  # sympy can raise on exotic input; a reward must not crash on it
        return False


def score(response: str, gold: str) -> float:
    """Binary math reward: 1.0 iff the response's final answer equals ``gold``.

    Args:
        response: Full model output.
        gold: Reference answer.

    Returns:
        1.0 or 0.0.
    """
    ans = extract_answer(response)
    if ans is None:
        return 0.0
    return 1.0 if is_equivalent(ans, gold) else 0.0
