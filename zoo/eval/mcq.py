"""Multiple-choice and short open answers (Nemotron-CrossThink, algorithms.md §8).

Reward R = R_acc and R_format: the final answer in ``\\boxed{}`` matches the gold answer, and the reasoning sits in
``<think>...</think>``. MCQ answers are the option label only ("C"); open answers are kept only when the gold
has at most 10 words, and are compared after normalisation (case, punctuation, articles, whitespace).

Extraction order for MCQ: the last ``\\boxed{}``, then "answer is (C)" / "Answer: C" forms, then a reply that
is just a label. A boxed option *text* (e.g. ``\\boxed{Paris}``) is mapped back to its label when options are given.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from zoo.eval.math import extract_boxed

__all__ = ["MAX_OPEN_WORDS", "extract_choice", "normalise", "open_answer_ok", "format_ok", "score", "score_open"]

MAX_OPEN_WORDS = 10
_LABELS = string.ascii_uppercase
_ANSWER_RE = re.compile(r"answer\s*(?:is|:)\s*\(?\s*([A-Za-z])\s*\)?(?![A-Za-z])", re.IGNORECASE)
_LABEL_RE = re.compile(r"^\(?\s*([A-Za-z])\s*[\).:]?\s*$")


def _answer_part(text: str) -> str:
    return text.rsplit("</think>", 1)[1] if "</think>" in text else text


def _as_label(s: str, options: Sequence[str] | None) -> str | None:
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s).strip()
    m = _LABEL_RE.match(s)
    if m:
        label = m.group(1).upper()
        if options is None or _LABELS.index(label) < len(options):
            return label
    if options:
        for i, opt in enumerate(options):
            if normalise(s) == normalise(opt):
                return _LABELS[i]
    return None


def extract_choice(text: str, options: Sequence[str] | None = None) -> str | None:
    """The chosen option label ("A".."Z") of a response, or None.

    Args:
        text: Model output.
        options: Option texts in label order, to map a boxed option text back to its label and bound labels.

    Returns:
        The label in upper case.
    """
    ans = _answer_part(text)
    boxed = extract_boxed(ans)
    if boxed is not None:
        return _as_label(boxed, options)
    matches = _ANSWER_RE.findall(ans)
    if matches:
        return _as_label(matches[-1], options)
    return _as_label(ans, options)


def normalise(s: str) -> str:
    """Lower case, LaTeX text wrappers, punctuation and English articles removed, whitespace collapsed."""
    s = re.sub(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}", r"\1", s).lower()
    s = "".join(" " if ch in string.punctuation else ch for ch in s)
    words = [w for w in s.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def open_answer_ok(gold: str) -> bool:
    """CrossThink's verifiability filter for open answers: at most 10 words."""
    return 0 < len(gold.split()) <= MAX_OPEN_WORDS


def format_ok(text: str, *, prompt_opens_think: bool = False) -> bool:
    """Reasoning inside ``<think>...</think>`` followed by a boxed answer."""
    if "</think>" not in text or not (prompt_opens_think or "<think>" in text):
        return False
    return extract_boxed(_answer_part(text)) is not None


def score(response: str, gold: str, options: Sequence[str] | None = None, *, require_format: bool = True,
          prompt_opens_think: bool = False) -> float:
    """MCQ reward: 1.0 iff the chosen label equals ``gold`` (and the format holds).

    Args:
        response: Model output.
        gold: Gold label ("C") or, when ``options`` are given, possibly the gold option text.
        options: Option texts in label order.
        require_format: Demand ``<think>`` reasoning and a boxed answer (CrossThink's R_format).
        prompt_opens_think: The prompt pre-filled ``<think>``.

    Returns:
        1.0 or 0.0.
    """
    if require_format and not format_ok(response, prompt_opens_think=prompt_opens_think):
        return 0.0
    want = _as_label(gold, options)
    got = extract_choice(response, options)
    return 1.0 if want is not None and got == want else 0.0


def score_open(response: str, gold: str, *, require_format: bool = True, prompt_opens_think: bool = False) -> float:
    """Short open-answer reward: the boxed answer equals ``gold`` after normalisation.

    Args:
        response: Model output.
        gold: Gold answer of at most `MAX_OPEN_WORDS` words.
        require_format: Demand ``<think>`` reasoning and a boxed answer.
        prompt_opens_think: The prompt pre-filled ``<think>``.

    Returns:
        1.0 or 0.0.

    Raises:
        ValueError: ``gold`` is empty or longer than 10 words (not verifiable by this rule).
    """
    if not open_answer_ok(gold):
        raise ValueError(f"open answers must have 1..{MAX_OPEN_WORDS} words, got {gold!r:.80}")
    if require_format and not format_ok(response, prompt_opens_think=prompt_opens_think):
        return 0.0
    ans = extract_boxed(_answer_part(response))
    return 1.0 if ans is not None and normalise(ans) == normalise(gold) else 0.0
