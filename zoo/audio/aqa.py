"""DCASE 2025 Task 5 (audio question answering) harness: data, shuffled protocol, answer mapping, metrics, files.

Task: arXiv 2505.07365 and dcase.community/challenge2025/task-audio-question-answering. Three parts, all multiple
choice: Bioacoustics QA (`bqa`), Temporal Soundscapes QA (`tsqa`), Complex QA (`cqa`). The metric is top-1
accuracy with an answer-shuffling robustness criterion; the official number of shuffles and their aggregation are
not published (see reference/algorithms.md section 2), so this harness reports both aggregations:

* `mean`: accuracy averaged over the K permutations of each question (then over questions);
* `strict`: a question counts only when it is answered correctly under all K permutations.

Per part, both are reported with the macro average over the parts present (each part weighted equally, as the
challenge ranks by domain average) and the micro average over all questions.

Protocol choices (ours, documented because the official ones are unverified):
* Permutations are seeded per question (`seed` and the item id), so results do not depend on file order, and
  balanced: the option shown first cycles through all options before any repeats, so with K >= the number of
  options a position-biased answerer cannot pass the strict criterion by luck.
* Two scoring modes. `generation`: the reply is mapped to an option by `map_reply` (letter, exact text,
  normalised text, unique substring, else wrong). `likelihood`: each shown option is scored by the model's
  length-normalised log-probability under a fixed answer template; the best one is the prediction.
* The submission CSV (`question,answer`, the verbatim option text as in the data file) takes, per question, the
  option predicted most often over the permutations (ties: the one predicted first).

Data: JSONL, a JSON list (or `{"items": [...]}`), or a directory of per-question JSON files, with fields `id`,
`audio` (relative to the file), `question`, `choices` (alias `choice`), `answer`, `part`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.jsonl import iter_jsonl

__all__ = [
    "PARTS",
    "AQADataError",
    "AQAItem",
    "AQAQuery",
    "AQARecord",
    "AQAResult",
    "load_aqa",
    "choice_permutations",
    "build_queries",
    "format_prompt",
    "map_reply",
    "evaluate",
    "compute_metrics",
    "write_submission",
    "write_report",
    "chat_answerer",
    "likelihood_scorer",
    "add_arguments",
    "main_eval",
]

PARTS = ("bqa", "tsqa", "cqa")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

PROMPT_TEMPLATE = "{question}\n{options}\nAnswer with the option's letter from the given choices directly."
"""Generation prompt; `{options}` is one `(A) text` line per shown option."""
LIKELIHOOD_PROMPT_TEMPLATE = "{question}\n{options}\nAnswer with the text of the correct option."
"""Likelihood prompt: the options are still listed (in shuffled order), the reply scored is the option text."""
ANSWER_TEMPLATE = "{option}"
"""Continuation scored in likelihood mode (only these tokens are averaged, so a shared prefix would not matter)."""


class AQADataError(ZooError):
    """An AQA data file or item that cannot be used; the message names the file, line and item id."""


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AQAItem:
    """One multiple-choice question about one audio clip.

    Attributes:
        id: unique question id (the submission's `question` column).
        audio: resolved path of the audio file.
        question: question text.
        choices: option strings exactly as in the data file (the submission writes them verbatim).
        answer: the correct option, one of `choices`.
        part: `bqa`, `tsqa` or `cqa`.
        extra: any other fields of the item (kept for reports).
    """

    id: str
    audio: Path
    question: str
    choices: tuple[str, ...]
    answer: str
    part: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def answer_index(self) -> int:
        """Index of the answer in `choices`."""
        return self.choices.index(self.answer)


def _read_records(path: Path) -> list[tuple[str, Path, Any]]:
    """Raw items with a location string ("file:line") for error messages and the file they came from."""
    out: list[tuple[str, Path, Any]] = []
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())
        if not files:
            raise AQADataError(f"{path}: no .json or .jsonl files in the directory")
        for f in files:
            out.extend(_read_records(f))
        return out
    if path.suffix == ".jsonl":
        # non-objects pass through here so _parse_item reports them with the item's context
        return [(where, path, obj) for where, obj in iter_jsonl(path, AQADataError, require_object=False)]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AQADataError(f"{path}: AQA data file not found") from None
    except UnicodeDecodeError as e:
        raise AQADataError(f"{path}: not UTF-8 text ({e})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise AQADataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        obj = obj["items"]
    if isinstance(obj, dict):
        return [(str(path), path, obj)]
    if isinstance(obj, list):
        return [(f"{path}[{i}]", path, o) for i, o in enumerate(obj)]
    raise AQADataError(f"{path}: expected an item object, a list of items or {{'items': [...]}}")


def _parse_item(where: str, raw: Any, base: Path, default_part: str | None, check_audio: bool) -> AQAItem:
    if not isinstance(raw, dict):
        raise AQADataError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    item_id = raw.get("id", raw.get("question_id"))
    label = f"{where}: item {item_id!r}" if item_id is not None else f"{where}: item"
    if item_id is None or str(item_id).strip() == "":
        raise AQADataError(f"{label}: missing field 'id'")
    choices = raw.get("choices", raw.get("choice"))
    part = raw.get("part", default_part)
    for name, value in (("audio", raw.get("audio")), ("question", raw.get("question")), ("answer", raw.get("answer"))):
        if not isinstance(value, str) or not value.strip():
            raise AQADataError(f"{label}: missing or empty field {name!r}")
    if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise AQADataError(f"{label}: 'choices' must be a list of non-empty strings")
    if len(choices) < 2:
        raise AQADataError(f"{label}: needs at least 2 choices, got {len(choices)}")
    if len(choices) > len(LETTERS):
        raise AQADataError(f"{label}: at most {len(LETTERS)} choices are supported, got {len(choices)}")
    dup = [c for c, n in Counter(choices).items() if n > 1]
    if dup:
        raise AQADataError(f"{label}: duplicate choices {dup}")
    if raw["answer"] not in choices:
        raise AQADataError(f"{label}: answer {raw['answer']!r} is not among its choices {choices}")
    if part not in PARTS:
        raise AQADataError(f"{label}: 'part' must be one of {list(PARTS)}, got {part!r}")
    audio = Path(raw["audio"]).expanduser()
    if not audio.is_absolute():
        audio = base / audio
    if check_audio and not audio.is_file():
        raise AQADataError(f"{label}: audio file not found: {audio}")
    known = {"id", "question_id", "audio", "question", "choices", "choice", "answer", "part"}
    extra = {k: v for k, v in raw.items() if k not in known}
    return AQAItem(str(item_id), audio, raw["question"], tuple(choices), raw["answer"], part, extra)


def load_aqa(
    path: str | os.PathLike,
    *,
    part: str | None = None,
    audio_root: str | os.PathLike | None = None,
    check_audio: bool = True,
) -> list[AQAItem]:
    """Load and validate an AQA set.

    Args:
        path: a .jsonl file, a .json file (list or `{"items": [...]}` or one item), or a directory of them.
        part: part to assume for items without a `part` field (for files holding a single part).
        audio_root: directory relative audio paths are resolved against (default: the data file's directory).
        check_audio: check that every audio file exists.

    Returns:
        The items, in file order.

    Raises:
        AQADataError: naming file, line and item for: invalid JSON, missing fields, fewer than 2 or duplicate
            choices, an answer not among the choices, an unknown part, a missing audio file, a duplicate id, or
            an empty set.
    """
    p = Path(path)
    items: list[AQAItem] = []
    seen: dict[str, str] = {}
    for where, source, raw in _read_records(p):
        base = Path(audio_root) if audio_root is not None else source.parent
        item = _parse_item(where, raw, base, part, check_audio)
        if item.id in seen:
            raise AQADataError(f"{where}: duplicate item id {item.id!r} (first at {seen[item.id]})")
        seen[item.id] = where
        items.append(item)
    if not items:
        raise AQADataError(f"{p}: no items")
    return items


# ---------------------------------------------------------------------------------------------------------------
# Protocol: permutations and prompts
# ---------------------------------------------------------------------------------------------------------------


def choice_permutations(n: int, k: int, seed: int, item_id: str) -> list[tuple[int, ...]]:
    """K seeded permutations of n options, balanced in the first position.

    The option shown first cycles through a seeded random order of all options; the remaining positions are
    shuffled independently for each permutation. Seeding by (seed, item id) makes each question's permutations
    independent of the other items and of file order.

    Args:
        n: number of options.
        k: number of permutations.
        seed: global seed.
        item_id: the question's id.

    Returns:
        K tuples; `perm[j]` is the index (in the data file's order) of the option shown at position j.
    """
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 options and k >= 1 permutations, got n={n}, k={k}")
    # A str seed goes through SHA-512 in `random.seed`: stable across runs and PYTHONHASHSEED.
    rng = random.Random(f"aqa/{seed}/{item_id}")
    leaders = list(range(n))
    rng.shuffle(leaders)
    perms = []
    for j in range(k):
        lead = leaders[j % n]
        rest = [i for i in range(n) if i != lead]
        rng.shuffle(rest)
        perms.append((lead, *rest))
    return perms


_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Z])[.):]\s+")


def display_options(choices: Sequence[str]) -> list[str]:
    """Option texts to show: a stored letter prefix ("A. Writing") is dropped when every choice carries one in
    order (A, B, C, ...), since the harness re-letters options after shuffling."""
    found = [_LETTER_PREFIX.match(c) for c in choices]
    if all(found) and [m.group(1) for m in found] == list(LETTERS[: len(choices)]):  # type: ignore[union-attr]
        return [c[m.end() :] for c, m in zip(choices, found)]  # type: ignore[union-attr]
    return list(choices)


def format_prompt(question: str, options: Sequence[str], template: str = PROMPT_TEMPLATE) -> str:
    """The question followed by one `(A) option` line per shown option."""
    lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return template.format(question=question.strip(), options=lines)


@dataclass(frozen=True)
class AQAQuery:
    """One question under one permutation: what an answerer sees.

    Attributes:
        item: the question.
        index: which of the K permutations (0-based).
        permutation: data-file option index shown at each position.
        options: shown option texts, in shown order.
        prompt: the full text prompt (question, lettered options, instruction).
    """

    item: AQAItem
    index: int
    permutation: tuple[int, ...]
    options: tuple[str, ...]
    prompt: str

    @property
    def correct_position(self) -> int:
        """Shown position of the correct option."""
        return self.permutation.index(self.item.answer_index)


def build_queries(item: AQAItem, *, k: int = 8, seed: int = 0, template: str = PROMPT_TEMPLATE) -> list[AQAQuery]:
    """The K shuffled queries of one item."""
    shown = display_options(item.choices)
    out = []
    for j, perm in enumerate(choice_permutations(len(item.choices), k, seed, item.id)):
        options = tuple(shown[i] for i in perm)
        out.append(AQAQuery(item, j, perm, options, format_prompt(item.question, options, template)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Mapping a free-form reply to an option
# ---------------------------------------------------------------------------------------------------------------

# Letter patterns, strongest first. Within a tier, several distinct letters make the reply ambiguous (wrong).
_ANSWER_KEYWORD = re.compile(
    r"(?i:answer|option|choice)\s*(?:is|would be|:)?\s*[:\-]?\s*\(?([A-Z])\)?(?=$|[\s.,;:!?)])"
)
_WHOLE_LETTER = re.compile(r"^\W*([A-Za-z])\W*$")  # the reply is just a letter: "B", "(b)", "B."
_LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?:\)|[.:](?=\s|$))")  # "B) ...", "(B) ...", "B. ...", "B: ..."
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")  # "(B)" anywhere
# A leading label and "(X)" elsewhere share a tier, so "(A) or (B)" is a conflict rather than "A".
_LETTER_TIERS = ((_ANSWER_KEYWORD,), (_WHOLE_LETTER,), (_LEADING_LETTER, _PAREN_LETTER))
_ANSWER_PHRASE = re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is\s*)?")


def normalize_text(text: str) -> str:
    """Lower-case, punctuation to spaces, whitespace collapsed: "The  First-tone." -> "the first tone"."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", text.lower()).split())


def _letter(reply: str, n: int) -> int | None | bool:
    """Option position named by a letter; None when no letter is named; False when the letters conflict."""
    for tier in _LETTER_TIERS:
        letters = {m.upper() for pattern in tier for m in pattern.findall(reply)}
        letters = {c for c in letters if LETTERS.index(c) < n}
        if len(letters) == 1:
            return LETTERS.index(letters.pop())
        if len(letters) > 1:
            return False
    return None


def map_reply(reply: str, options: Sequence[str]) -> int | None:
    """Map a free-form reply to a shown option position, or None (counted wrong).

    Rules, first match wins:
    1. option letter: "Answer: B" / "the answer is (B)", a reply that is only a letter ("b", "(B)"), a leading
       label ("B) ...", "B. ..."), or "(B)" anywhere; letters beyond the options are ignored, and conflicting
       letters within the strongest matching form make the reply wrong;
    2. exact option text;
    3. normalised text equality (case, punctuation, spacing, a leading "the answer is" ignored);
    4. unique substring: exactly one option's normalised text occurs in the reply as whole words (an option
       contained in another matched option, like "tone" in "high tone", does not count against it);
    5. otherwise wrong.

    Args:
        reply: the model's reply text.
        options: shown option texts, in shown order.

    Returns:
        The shown position of the chosen option, or None.
    """
    n = len(options)
    hit = _letter(reply, n)
    if hit is False:
        return None
    if isinstance(hit, int):
        return hit
    stripped = reply.strip()
    for i, o in enumerate(options):
        if stripped == o:
            return i
    norm = _ANSWER_PHRASE.sub("", normalize_text(reply)).strip()
    norm_options = [normalize_text(o) for o in options]
    for i, o in enumerate(norm_options):
        if norm == o:
            return i
    padded = f" {normalize_text(reply)} "
    found = [i for i, o in enumerate(norm_options) if o and f" {o} " in padded]
    found = [i for i in found if not any(j != i and norm_options[i] in norm_options[j] for j in found)]
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------

Answerer = Callable[[AQAQuery], str]
"""Generation mode: the reply text for a query."""
Scorer = Callable[[AQAQuery, list[str]], list[float]]
"""Likelihood mode: one score (length-normalised log-probability) per continuation, in shown order."""


@dataclass
class AQARecord:
    """The outcome of one query.

    Attributes:
        item_id: question id.
        part: the item's part.
        index: permutation index.
        permutation: data-file option index per shown position.
        predicted: predicted option as a data-file index, or None (unmapped reply).
        correct: whether it is the answer.
        reply: generation mode: the raw reply.
        scores: likelihood mode: the per-option scores in data-file order.
    """

    item_id: str
    part: str
    index: int
    permutation: tuple[int, ...]
    predicted: int | None
    correct: bool
    reply: str | None = None
    scores: list[float] | None = None


@dataclass
class AQAResult:
    """Records, metrics and the settings that produced them."""

    items: list[AQAItem]
    records: list[AQARecord]
    metrics: dict[str, Any]
    settings: dict[str, Any]


def evaluate(
    items: Sequence[AQAItem],
    *,
    mode: str = "generation",
    answer: Answerer | None = None,
    score: Scorer | None = None,
    k: int = 8,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> AQAResult:
    """Ask every item under K permutations and score it.

    Args:
        items: the questions (see `load_aqa`).
        mode: "generation" (needs `answer`) or "likelihood" (needs `score`).
        answer: maps a query to a reply text.
        score: maps a query and its continuations (`ANSWER_TEMPLATE` per shown option) to scores.
        k: permutations per question.
        seed: permutation seed.
        progress: called with (done, total) after each query.

    Returns:
        Records for all K x len(items) queries and the metrics of `compute_metrics`.
    """
    if mode not in ("generation", "likelihood"):
        raise ZooError(f"unknown AQA scoring mode {mode!r}; use 'generation' or 'likelihood'")
    if mode == "generation" and answer is None:
        raise ZooError("AQA generation mode needs an answer function")
    if mode == "likelihood" and score is None:
        raise ZooError("AQA likelihood mode needs a score function")
    if k < 1:
        raise ZooError(f"AQA needs k >= 1 permutations, got {k}")
    template = PROMPT_TEMPLATE if mode == "generation" else LIKELIHOOD_PROMPT_TEMPLATE
    records: list[AQARecord] = []
    total, done = len(items) * k, 0
    for item in items:
        for q in build_queries(item, k=k, seed=seed, template=template):
            if mode == "generation":
                reply = str(answer(q))  # type: ignore[misc]
                pos = map_reply(reply, q.options)
                rec = AQARecord(item.id, item.part, q.index, q.permutation, None, False, reply=reply)
            else:
                conts = [ANSWER_TEMPLATE.format(option=o) for o in q.options]
                shown_scores = [float(s) for s in score(q, conts)]  # type: ignore[misc]
                if len(shown_scores) != len(conts):
                    raise ZooError(f"AQA scorer returned {len(shown_scores)} scores for {len(conts)} options")
                # First maximum in shown order; exact float ties are vanishingly rare with real models.
                pos = max(range(len(conts)), key=lambda i: (shown_scores[i], -i))
                scores = [0.0] * len(conts)
                for shown_i, orig_i in enumerate(q.permutation):
                    scores[orig_i] = shown_scores[shown_i]
                rec = AQARecord(item.id, item.part, q.index, q.permutation, None, False, scores=scores)
            if pos is not None:
                rec.predicted = q.permutation[pos]
                rec.correct = rec.predicted == item.answer_index
            records.append(rec)
            done += 1
            if progress is not None:
                progress(done, total)
    settings = {"mode": mode, "k": k, "seed": seed, "prompt_template": template, "answer_template": ANSWER_TEMPLATE}
    return AQAResult(list(items), records, compute_metrics(records, k), settings)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _group_metrics(by_item: dict[str, list[AQARecord]], k: int) -> dict[str, Any]:
    per_q_mean = [_mean([float(r.correct) for r in recs]) for recs in by_item.values()]
    per_q_strict = [float(all(r.correct for r in recs)) for recs in by_item.values()]
    # Accuracy of the j-th permutation across questions: its spread is the "mean +- std over shuffles" view.
    per_perm = [_mean([float(recs[j].correct) for recs in by_item.values()]) for j in range(k)]
    unmapped = [r.predicted is None for recs in by_item.values() for r in recs]
    return {
        "n_questions": len(by_item),
        "accuracy_mean": _mean(per_q_mean),
        "accuracy_strict": _mean(per_q_strict),
        "accuracy_std_over_permutations": _std(per_perm),
        "accuracy_per_permutation": per_perm,
        "unmapped_rate": _mean([float(u) for u in unmapped]),
    }


def compute_metrics(records: Iterable[AQARecord], k: int) -> dict[str, Any]:
    """Per-part, macro and micro accuracies under both shuffle aggregations.

    Args:
        records: K records per question (as from `evaluate`).
        k: permutations per question.

    Returns:
        `{"parts": {part: {...}}, "macro": {...}, "micro": {...}}`; each block has `accuracy_mean` (mean over
        permutations, then questions), `accuracy_strict` (correct under all K), and the micro/part blocks also
        `n_questions`, `accuracy_std_over_permutations`, `accuracy_per_permutation`, `unmapped_rate`. The macro
        block averages the parts present with equal weight.
    """
    by_part: dict[str, dict[str, list[AQARecord]]] = {}
    every: dict[str, list[AQARecord]] = {}
    for r in records:
        by_part.setdefault(r.part, {}).setdefault(r.item_id, []).append(r)
        every.setdefault(r.item_id, []).append(r)
    for item_id, recs in every.items():
        if len(recs) != k:
            raise ZooError(f"AQA item {item_id!r} has {len(recs)} records, expected k={k}")
        recs.sort(key=lambda r: r.index)
    parts = {p: _group_metrics(by_part[p], k) for p in PARTS if p in by_part}
    macro = {
        "parts": list(parts),
        "accuracy_mean": _mean([m["accuracy_mean"] for m in parts.values()]),
        "accuracy_strict": _mean([m["accuracy_strict"] for m in parts.values()]),
    }
    return {"parts": parts, "macro": macro, "micro": _group_metrics(every, k)}


# ---------------------------------------------------------------------------------------------------------------
# Output files (atomic)
# ---------------------------------------------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def submission_answers(result: AQAResult) -> dict[str, str]:
    """Per question, the verbatim option text predicted most often over its permutations ("" when never mapped)."""
    by_item: dict[str, list[AQARecord]] = {}
    for r in result.records:
        by_item.setdefault(r.item_id, []).append(r)
    out = {}
    for item in result.items:
        preds = [r.predicted for r in sorted(by_item[item.id], key=lambda r: r.index) if r.predicted is not None]
        if not preds:
            out[item.id] = ""
            continue
        counts = Counter(preds)
        best = max(counts.values())
        out[item.id] = item.choices[next(p for p in preds if counts[p] == best)]
    return out


def write_submission(result: AQAResult, path: str | os.PathLike) -> Path:
    """Write the challenge CSV: header `question,answer`, one row per question with the verbatim option text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["question", "answer"])
    for item_id, text in submission_answers(result).items():
        w.writerow([item_id, text])
    p = Path(path)
    _atomic_write_text(p, buf.getvalue())
    return p


def write_report(result: AQAResult, path: str | os.PathLike, **info: Any) -> Path:
    """Write the JSON report: settings, metrics, and per question the answer, submission and per-permutation
    outcomes (with replies or scores). Extra keyword arguments (model name, data path) go in as they are."""
    answers = submission_answers(result)
    by_item: dict[str, list[AQARecord]] = {}
    for r in result.records:
        by_item.setdefault(r.item_id, []).append(r)
    questions = []
    for item in result.items:
        recs = sorted(by_item[item.id], key=lambda r: r.index)
        questions.append({
            "id": item.id, "part": item.part, "answer": item.answer, "submitted": answers[item.id],
            "correct_all": all(r.correct for r in recs),
            "permutations": [
                {"order": list(r.permutation), "predicted": r.predicted, "correct": r.correct,
                 **({"reply": r.reply} if r.reply is not None else {}),
                 **({"scores": r.scores} if r.scores is not None else {})}
                for r in recs
            ],
        })  # fmt: skip
    report = {"task": "dcase2025-task5-aqa", **info, **result.settings, "metrics": result.metrics,
              "questions": questions}  # fmt: skip
    p = Path(path)
    _atomic_write_text(p, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return p


# ---------------------------------------------------------------------------------------------------------------
# Model adapters
# ---------------------------------------------------------------------------------------------------------------


def chat_answerer(model: Any, *, max_new_tokens: int = 32, **chat_kwargs: Any) -> Answerer:
    """Generation-mode answerer from a loaded audio-language model: `model.chat(prompt, audios=[audio])`."""

    def answer(q: AQAQuery) -> str:
        reply = model.chat(q.prompt, audios=[str(q.item.audio)], max_new_tokens=max_new_tokens, **chat_kwargs)
        return reply if isinstance(reply, str) else str(getattr(reply, "text", reply))

    return answer


def likelihood_scorer(model: Any) -> Scorer:
    """Likelihood-mode scorer from a loaded audio-language model providing `option_logprobs(prompt, audios,
    continuations) -> list[float]` (mean log-probability per continuation token; see `zoo.audio.model`).
    The question is rendered as one user turn with the model's chat format, as `model.chat` does."""
    if not hasattr(model, "option_logprobs"):
        raise ZooError(f"{type(model).__name__} cannot score options by likelihood (no option_logprobs method)")

    from zoo.chat import build_prompt

    def score(q: AQAQuery, continuations: list[str]) -> list[float]:
        # The same rendering `model.chat` uses, so both modes see the question in the same chat turn.
        prompt = build_prompt(model, q.prompt)
        return list(model.option_logprobs(prompt, [str(q.item.audio)], continuations))

    return score


# ---------------------------------------------------------------------------------------------------------------
# Command line (`zoo eval aqa ...`)
# ---------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the AQA evaluation (for `zoo eval aqa` or a standalone parser)."""
    parser.add_argument("--model", required=True, help="zoo entry name or local checkpoint directory")
    parser.add_argument("--data", required=True, help="AQA items: .jsonl, .json or a directory of .json files")
    parser.add_argument("--part", choices=PARTS, default=None, help="part for items without a 'part' field")
    parser.add_argument("--mode", choices=("generation", "likelihood"), default="generation")
    parser.add_argument("--k", type=int, default=8, help="shuffled permutations per question")
    parser.add_argument("--seed", type=int, default=0, help="permutation seed")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N questions")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="random-init tiny model (smoke test, no download)")
    parser.add_argument("--out", required=True, help="directory for submission.csv and report.json")


def main_eval(args: argparse.Namespace) -> int:
    """Run the AQA evaluation from parsed arguments; prints the metrics table, writes the CSV and JSON report."""
    import zoo

    # getattr defaults: a caller such as `zoo eval aqa` may not define the AQA-only options.
    mode, k = getattr(args, "mode", "generation"), getattr(args, "k", 8)
    items = load_aqa(args.data, part=getattr(args, "part", None))
    if args.limit is not None:
        items = items[: args.limit]
    model = zoo.load(args.model, tiny=getattr(args, "tiny", False), seed=args.seed)
    model.eval()
    if mode == "generation":
        result = evaluate(items, mode="generation", answer=chat_answerer(model, max_new_tokens=args.max_new_tokens),
                          k=k, seed=args.seed)  # fmt: skip
    else:
        result = evaluate(items, mode="likelihood", score=likelihood_scorer(model), k=k, seed=args.seed)
    out = Path(args.out)
    write_submission(result, out / "submission.csv")
    write_report(result, out / "report.json", model=str(args.model), data=str(args.data))
    print(format_metrics(result.metrics))
    print(f"wrote {out / 'submission.csv'} and {out / 'report.json'}")
    return 0


def format_metrics(metrics: dict[str, Any]) -> str:
    """A plain-text table: one row per part, then macro and micro."""
    rows = [f"{'part':<8}{'n':>6}{'mean acc':>10}{'strict':>9}"]
    for p, m in metrics["parts"].items():
        rows.append(f"{p:<8}{m['n_questions']:>6}{m['accuracy_mean']:>10.4f}{m['accuracy_strict']:>9.4f}")
    ma, mi = metrics["macro"], metrics["micro"]
    rows.append(f"{'macro':<8}{'':>6}{ma['accuracy_mean']:>10.4f}{ma['accuracy_strict']:>9.4f}")
    rows.append(f"{'micro':<8}{mi['n_questions']:>6}{mi['accuracy_mean']:>10.4f}{mi['accuracy_strict']:>9.4f}")
    return "\n".join(rows)
