"""Nemotron-CrossThink data: templates, verifiability filters and named blends, written as RL-ready JSONL.

Akter et al., "Nemotron-CrossThink: Scaling Self-Learning beyond Math Reasoning" (arXiv 2504.13941); section 8 of
the algorithm sheet.

Input records (JSONL): `question` (str), `options` (list of str, or {label: text}; absent for open questions),
`answer` (an option label such as "C", an option's text, or a free-form answer), `domain` ("general" or "math"),
`source` (dataset name), optional `id`.

Templates:
* MCQ (`T_MCQ`): question + lettered options; the answer is the label only (the paper found the bare label beats
  label + text).
* Open (`T_Open`): options stripped, the answer is the gold option's text. Questions that cannot stand without their
  options ("Which of the following ...", "all of the above", ...) are dropped from open conversion.
* Math: open-ended, answer as given.

Verifiability filters: MCQ keeps only items whose gold answer is among the options; open-ended keeps only answers
of at most 10 words; math drops items without an answer.

Output (RL-ready, consumed by the GRPO recipe; see docs/curation.md): `prompt` (chat messages), `answer` (gold
string to compare with the model's final `\\boxed{}` answer), `task` ("mcq" | "open" | "math"), `format`
("mcq" | "open"), `domain`, `source`, `id`. The reward in the paper is exact match of the `\\boxed{}` answer AND
reasoning inside `<think>...</think>`; the instruction in each prompt asks for exactly that.
"""

from __future__ import annotations

import random
import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zoo.errors import ZooError
from zoo.training.curation.stage import Drop, Result, read_jsonl, require, write_jsonl_atomic

Template = Literal["mcq", "open", "open_or_mcq"]

MAX_OPEN_ANSWER_WORDS = 10
INSTRUCTION = "Think step by step inside <think> </think>, then give the final answer in \\boxed{}."
MCQ_INSTRUCTION = "Answer with the letter of the correct option only. " + INSTRUCTION

# Question stems that presuppose a visible option list; such items are ill-posed once the options are stripped.
_NEEDS_OPTIONS = re.compile(
    r"\b(which\s+(one\s+)?of\s+(these|those|the\s+(following|options|choices|statements|above|below))|"
    r"all\s+of\s+the\s+(above|following)|none\s+of\s+the\s+(above|following)|"
    r"the\s+following\s+(is|are)\s+(true|false|correct|incorrect)|(select|choose|pick)\s+the\s+(correct|best))\b",
    re.I,
)

# Named blends: weights per group value and the field that groups records (the paper's B_* blends).
BLENDS: dict[str, tuple[str, dict[str, float] | None]] = {
    "gpr_up": ("domain", {"general": 2.0, "math": 1.0}),  # B_gpr↑: best average in the paper
    "mr_up": ("domain", {"math": 2.0, "general": 1.0}),  # B_mr↑
    "mcq_up": ("format", {"mcq": 2.0, "open": 1.0}),  # B_mcq↑
    "open_up": ("format", {"open": 2.0, "mcq": 1.0}),  # B_open↑
    "natural": ("domain", None),  # B_nd: everything, natural proportions
    "math_only": ("domain", {"math": 1.0}),
    "general_only": ("domain", {"general": 1.0}),
}


def needs_options(question: str) -> bool:
    """True when the question only makes sense with its options shown."""
    return bool(_NEEDS_OPTIONS.search(question))


def _options(rec: dict[str, Any], where: str) -> list[tuple[str, str]]:
    opts = rec.get("options")
    if isinstance(opts, Mapping):
        return [(str(k).strip(), str(v).strip()) for k, v in opts.items()]
    if isinstance(opts, Sequence) and not isinstance(opts, str):
        if len(opts) > len(string.ascii_uppercase):
            raise ZooError(f"{where}: {len(opts)} options; at most 26 are supported")
        return [(string.ascii_uppercase[i], str(o).strip()) for i, o in enumerate(opts)]
    raise ZooError(f"{where}: field 'options' should be a list or an object, got {type(opts).__name__}")


def _norm(s: str) -> str:
    return " ".join(s.lower().strip().rstrip(".").split())


def _gold(rec: dict[str, Any], opts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (label, text) of the gold option, matching the answer as a label first, then as option text."""
    ans = str(rec.get("answer", "")).strip()
    label = ans.strip("()").rstrip(".").strip()
    for lab, txt in opts:
        if label.upper() == lab.upper():
            return lab, txt
    for lab, txt in opts:
        if _norm(ans) and _norm(ans) == _norm(txt):
            return lab, txt
    return None


def _record(rec: dict[str, Any], prompt: str, answer: str, task: str, fmt: str, where: str) -> dict[str, Any]:
    return {
        "id": rec.get("id", where),
        "prompt": [{"role": "user", "content": prompt}],
        "answer": answer,
        "task": task,
        "format": fmt,
        "domain": rec.get("domain", "general"),
        "source": rec.get("source", "unknown"),
    }


def to_mcq(rec: dict[str, Any], where: str) -> Result:
    """MCQ template; drops `gold_not_in_options`."""
    q = require(rec, "question", where).strip()
    opts = _options(rec, where)
    gold = _gold(rec, opts)
    if gold is None:
        return Drop("gold_not_in_options")
    body = "\n".join(f"{lab}. {txt}" for lab, txt in opts)
    return _record(rec, f"{q}\n\n{body}\n\n{MCQ_INSTRUCTION}", gold[0], "mcq", "mcq", where)


def to_open(rec: dict[str, Any], where: str) -> Result:
    """Open-ended template; drops `needs_options`, `gold_not_in_options`, `open_answer_too_long`, `no_answer`."""
    q = require(rec, "question", where).strip()
    if rec.get("options"):
        if needs_options(q):
            return Drop("needs_options")
        gold = _gold(rec, _options(rec, where))
        if gold is None:
            return Drop("gold_not_in_options")
        answer = gold[1]
    else:
        answer = str(rec.get("answer") or "").strip()
        if not answer:
            return Drop("no_answer")
    if len(answer.split()) > MAX_OPEN_ANSWER_WORDS:
        return Drop("open_answer_too_long")
    return _record(rec, f"{q}\n\n{INSTRUCTION}", answer, "open", "open", where)


def to_math(rec: dict[str, Any], where: str) -> Result:
    """Math template; drops `math_no_answer`."""
    q = require(rec, "question", where).strip()
    answer = str(rec.get("answer") or "").strip()
    if not answer:
        return Drop("math_no_answer")
    return _record(rec, f"{q}\n\n{INSTRUCTION}", answer, "math", "open", where)


@dataclass
class CrossThinkStage:
    """JSONL stage applying the template and filters per record (`domain` "math" always uses the math template).

    `template`: "mcq" keeps options; "open" strips them; "open_or_mcq" strips them where the question allows and
    keeps the MCQ form for "Which of the following"-type items.
    """

    template: Template = "open"
    name: str = "crossthink"
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.template not in ("mcq", "open", "open_or_mcq"):
            raise ZooError(f"template must be mcq, open or open_or_mcq, got {self.template!r}")

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        return [self.process(r, w) for r, w in zip(records, wheres)]

    def process(self, rec: dict[str, Any], where: str) -> Result:
        domain = rec.get("domain", "general")
        if domain not in ("general", "math"):
            raise ZooError(f"{where}: field 'domain' must be 'general' or 'math', got {domain!r}")
        if domain == "math" and not rec.get("options"):
            return to_math(rec, where)
        if not rec.get("options"):
            return to_open(rec, where)
        if self.template == "mcq":
            return to_mcq(rec, where)
        if self.template == "open_or_mcq" and needs_options(require(rec, "question", where)):
            return to_mcq(rec, where)
        return to_open(rec, where)


def blend(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    name: str | None = None,
    group_by: str = "domain",
    ratios: Mapping[str, float] | None = None,
    total: int | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Mix RL-ready JSONL files by group ratios and write a shuffled blend (atomically).

    Args:
        inputs: RL-ready JSONL files (outputs of `CrossThinkStage`).
        out: output JSONL.
        name: a preset from `BLENDS` (sets `group_by` and `ratios`).
        group_by: record field that defines the groups ("domain" or "format").
        ratios: group -> weight; None keeps every record (natural proportions).
        total: records in the blend; None takes the largest total that every group can fill without repeats.
        seed: sampling seed.

    Returns:
        Group -> number of records written.
    """
    if name is not None:
        if name not in BLENDS:
            raise ZooError(f"unknown blend {name!r}; known: {sorted(BLENDS)}")
        group_by, ratios = BLENDS[name]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in inputs:
        for where, rec in read_jsonl(p):
            groups[str(require(rec, group_by, where))].append(rec)
    rng = random.Random(seed)
    if ratios is None:
        chosen = {g: list(rs) for g, rs in groups.items()}
    else:
        missing = [g for g, w in ratios.items() if w > 0 and not groups.get(g)]
        if missing:
            raise ZooError(f"blend needs records with {group_by} in {missing}, none found in {list(map(str, inputs))}")
        wsum = sum(ratios.values())
        cap = min(len(groups[g]) * wsum / w for g, w in ratios.items() if w > 0)
        n_total = int(cap) if total is None else total
        chosen = {}
        for g, w in ratios.items():
            k = round(n_total * w / wsum)
            pool = groups[g]
            # Without replacement while the group has enough; beyond that, whole extra passes (upsampling).
            picks = [r for _ in range(k // len(pool)) for r in pool] + rng.sample(pool, k % len(pool))
            chosen[g] = picks
    rows = [r for rs in chosen.values() for r in rs]
    rng.shuffle(rows)
    write_jsonl_atomic(out, rows)
    return {g: len(rs) for g, rs in chosen.items()}
