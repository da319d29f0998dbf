"""Prismatic Synthesis: grow a problem pool towards the sparse regions of a proxy model's gradient space.

Jung et al., arXiv 2505.20161 (section 9 of the algorithm sheet). One iteration:

1. gradient features (`gvendi.gradient_features`) of the current pool; k-means on them with k ~ 10% of the pool
   (cosine assignment on normalised features, 20 Lloyd iterations);
2. the generator writes new problems from few-shot prompts of `shots` pool examples (sampled with probability
   proportional to a `level` field when the pool has one, else uniformly), `per_call` problems per call;
3. candidates get features too and are assigned to their nearest centroid;
4. clusters are ranked by how many pool members they hold; candidates in the sparsest `keep_fraction` of the
   clusters are kept (the keep fraction is UNVERIFIED in the sources: 50% per one walkthrough, ~20% per another;
   default 0.5), optionally after an answer-agreement filter (a solver answers each problem `n` times; the
   problem is kept when the majority answer reaches `agree_frac`; the paper's solution filtering is UNVERIFIED);
5. kept candidates join the pool; G-Vendi of the pool is reported every iteration.

Deviations: one model may play generator and solver (the paper used Qwen2.5-72B for problems and R1-Distill-32B
for solutions); the prompt wording is ours. Each iteration's pool and the report are written atomically, and a
rerun resumes after the last finished iteration.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.training.curation.gvendi import gvendi
from zoo.training.curation.llm import TextGenerator
from zoo.training.curation.stage import read_jsonl, write_jsonl_atomic, write_text_atomic

Featurizer = Callable[[Sequence[dict[str, Any]]], torch.Tensor]


@dataclass
class PrismaticConfig:
    """Knobs of the loop.

    Attributes:
        iterations: synthesis rounds.
        cluster_frac: k = max(2, round(cluster_frac * pool size)).
        kmeans_iters: Lloyd iterations.
        calls_per_iter: generator calls per round.
        shots: pool examples per prompt.
        per_call: problems requested per call.
        keep_fraction: fraction of clusters, sparsest first, whose candidates are kept.
        agree_samples: solver samples per problem for the answer-agreement filter (0 disables it).
        agree_frac: share of samples that must give the majority answer.
        seed: sampling and k-means seed.
    """

    iterations: int = 3
    cluster_frac: float = 0.1
    kmeans_iters: int = 20
    calls_per_iter: int = 8
    shots: int = 5
    per_call: int = 2
    keep_fraction: float = 0.5
    agree_samples: int = 0
    agree_frac: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.keep_fraction <= 1:
            raise ZooError(f"keep_fraction must be in (0, 1], got {self.keep_fraction}")
        if not 0 < self.cluster_frac <= 1:
            raise ZooError(f"cluster_frac must be in (0, 1], got {self.cluster_frac}")


# ---------------------------------------------------------------------------------------------------------------
# k-means on the unit sphere
# ---------------------------------------------------------------------------------------------------------------


def kmeans(feats: torch.Tensor, k: int, *, iters: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means: k-means++ seeding, dot-product assignment, renormalised means.

    Args:
        feats: (n, d) features (normalised inside).
        k: clusters (clipped to n).

    Returns:
        centroids (k, d) unit-norm and assignment (n,) long.
    """
    x = F.normalize(feats.float(), dim=1)
    n = x.shape[0]
    k = max(1, min(k, n))
    g = torch.Generator().manual_seed(seed)
    idx = [int(torch.randint(n, (1,), generator=g))]
    for _ in range(1, k):
        dist = (1 - (x @ x[idx].T).max(dim=1).values).clamp(min=0)  # cosine distance to the nearest chosen
        if dist.sum() <= 0:  # all remaining points coincide with chosen ones
            idx.append(int(torch.randint(n, (1,), generator=g)))
        else:
            idx.append(int(torch.multinomial(dist, 1, generator=g)))
    c = x[idx].clone()
    assign = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        assign = (x @ c.T).argmax(dim=1)
        for j in range(k):
            members = x[assign == j]
            if len(members):  # an empty cluster keeps its old centroid
                c[j] = F.normalize(members.mean(0), dim=0)
    return c, (x @ c.T).argmax(dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Prompting and parsing
# ---------------------------------------------------------------------------------------------------------------

_PROBLEM = re.compile(r"(?:^|\n)\s*(?:New\s+)?Problem\s*\d*\s*[:.]\s*", re.I)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def few_shot_prompt(examples: Sequence[dict[str, Any]], per_call: int) -> str:
    shots = "\n\n".join(f"Problem {i + 1}: {e['problem'].strip()}" for i, e in enumerate(examples))
    return (f"Here are some example problems.\n\n{shots}\n\nWrite {per_call} new problems that are different from "
            "all of the examples in topic, skill and difficulty, and that each have a single, checkable answer. "
            "Start each with 'Problem:' and write nothing else.")


def parse_problems(text: str, limit: int, min_words: int = 3) -> list[str]:
    """Split a generator reply into problems at 'Problem:' markers; an unmarked reply counts as one problem.
    Pieces under `min_words` words are not problems (a stray number, an empty marker)."""
    parts = [p.strip() for p in _PROBLEM.split(text) if len(p.split()) >= min_words]
    return parts[:limit]


def final_answer(solution: str) -> str | None:
    """The last `\\boxed{}` content, else the last number in the text."""
    boxed = _BOXED.findall(solution)
    if boxed:
        return boxed[-1].strip()
    nums = _NUMBER.findall(solution)
    return nums[-1] if nums else None


def solve_prompt(problem: str) -> str:
    return f"{problem.strip()}\n\nSolve the problem. Put the final answer in \\boxed{{}}."


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


def _sample_shots(pool: Sequence[dict[str, Any]], shots: int, rng: random.Random) -> list[dict[str, Any]]:
    weights = [float(p.get("level", 1.0) or 1.0) for p in pool]
    chosen: list[dict[str, Any]] = []
    idx = list(range(len(pool)))
    for _ in range(min(shots, len(pool))):
        j = rng.choices(range(len(idx)), weights=[weights[i] for i in idx])[0]
        chosen.append(pool[idx.pop(j)])
    return chosen


def agreement(solver: TextGenerator, problems: Sequence[str], n: int) -> list[tuple[str | None, float]]:
    """(majority answer, its share) over `n` solver samples per problem."""
    outs = solver.generate([solve_prompt(p) for p in problems for _ in range(n)])
    res = []
    for i in range(len(problems)):
        answers = [a for a in (final_answer(o) for o in outs[i * n:(i + 1) * n]) if a]
        if not answers:
            res.append((None, 0.0))
            continue
        ans, cnt = Counter(answers).most_common(1)[0]
        res.append((ans, cnt / n))
    return res


def run_prismatic(
    pool: list[dict[str, Any]],
    generator: TextGenerator,
    featurize: Featurizer,
    cfg: PrismaticConfig,
    *,
    solver: TextGenerator | None = None,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the Prismatic Synthesis loop.

    Args:
        pool: seed problems; each needs `problem` (and may have `solution`, `answer`, `level`).
        generator: writes new problems.
        featurize: records -> (n, d) gradient features (e.g. `proxy_featurizer`).
        cfg: loop settings.
        solver: answers problems for the agreement filter and fills `solution`/`answer` of kept candidates;
            the generator is used when None and the filter is on.
        out_dir: when given, `pool_iter{i}.jsonl` and `report.json` are written after each iteration, and a rerun
            continues after the last finished iteration.
        log: progress sink (the CLI passes print).

    Returns:
        The final pool and one report dict per iteration (pool size, candidates, kept and dropped counts, G-Vendi).
    """
    if not pool:
        raise ZooError("Prismatic Synthesis needs a non-empty seed pool")
    for i, p in enumerate(pool):
        if not isinstance(p.get("problem"), str) or not p["problem"].strip():
            raise ZooError(f"seed pool row {i + 1}: missing or empty field 'problem'")
    out = Path(out_dir) if out_dir is not None else None
    reports: list[dict[str, Any]] = []
    start = 0
    if out is not None and (out / "report.json").exists():
        reports = json.loads((out / "report.json").read_text(encoding="utf-8"))
        start = len(reports) - 1  # entry 0 is the seed pool
        pool = [r for _, r in read_jsonl(out / f"pool_iter{start}.jsonl")]
        log(f"resuming after iteration {start} with {len(pool)} problems")
    rng = random.Random(cfg.seed + start)
    feats = featurize(pool)  # (n, d)
    if not reports:
        reports.append({"iteration": 0, "pool_size": len(pool), "gvendi": gvendi(feats)})
        _save(out, 0, pool, reports)
        log(f"iteration 0: pool {len(pool)}, G-Vendi {reports[-1]['gvendi']:.3f}")
    for it in range(start + 1, cfg.iterations + 1):
        k = max(2, round(cfg.cluster_frac * len(pool)))
        cents, assign = kmeans(feats, k, iters=cfg.kmeans_iters, seed=cfg.seed + it)
        sizes = torch.bincount(assign, minlength=cents.shape[0])  # (k,) pool members per cluster
        # Sparsest first; ties broken by cluster index so the choice is deterministic.
        order = sorted(range(cents.shape[0]), key=lambda j: (int(sizes[j]), j))
        n_keep = max(1, round(cfg.keep_fraction * cents.shape[0]))
        sparse = set(order[:n_keep])

        prompts = [few_shot_prompt(_sample_shots(pool, cfg.shots, rng), cfg.per_call)
                   for _ in range(cfg.calls_per_iter)]
        texts = [t for reply in generator.generate(prompts) for t in parse_problems(reply, cfg.per_call)]
        seen = {p["problem"].strip() for p in pool}
        cands = []
        for t in texts:
            if t not in seen:
                seen.add(t)
                cands.append({"problem": t, "origin": f"prismatic-iter{it}"})
        rep: dict[str, Any] = {"iteration": it, "k": int(cents.shape[0]), "candidates": len(texts),
                               "dropped_duplicate": len(texts) - len(cands), "dropped_dense": 0,
                               "dropped_disagree": 0}
        if cands:
            c_assign = (F.normalize(featurize(cands).float(), dim=1) @ cents.T).argmax(dim=1)
            kept = [c | {"cluster": int(a)} for c, a in zip(cands, c_assign.tolist()) if a in sparse]
            rep["dropped_dense"] = len(cands) - len(kept)
            if kept and cfg.agree_samples > 0:
                votes = agreement(solver or generator, [c["problem"] for c in kept], cfg.agree_samples)
                ok = [c | {"answer": a, "agreement": round(s, 3)} for c, (a, s) in zip(kept, votes)
                      if a is not None and s >= cfg.agree_frac]
                rep["dropped_disagree"] = len(kept) - len(ok)
                kept = ok
        else:
            kept = []
        if kept:
            pool = pool + kept
            feats = torch.cat([feats, featurize(kept)])
        rep.update(kept=len(kept), pool_size=len(pool), gvendi=gvendi(feats))
        reports.append(rep)
        _save(out, it, pool, reports)
        log(f"iteration {it}: {rep['candidates']} candidates, kept {len(kept)}, pool {len(pool)}, "
            f"G-Vendi {rep['gvendi']:.3f}")
    return pool, reports


def _save(out: Path | None, it: int, pool: list[dict[str, Any]], reports: list[dict[str, Any]]) -> None:
    if out is None:
        return
    write_jsonl_atomic(out / f"pool_iter{it}.jsonl", pool)
    write_text_atomic(out / "report.json", json.dumps(reports, indent=1) + "\n")  # last: marks the iteration done


def proxy_featurizer(model: torch.nn.Module, tokenizer: Any, *, d: int = 1024, seed: int = 0, max_len: int = 512,
                     batch_size: int = 8, use_solution: bool = False) -> Featurizer:
    """Gradient features from a proxy model.

    With `use_solution=False` (default) every record is featurised as the SFT loss of its problem text (empty
    prompt), so seed problems and freshly generated, still unsolved candidates live in the same space. With
    `use_solution=True` records that carry a `solution` use (problem -> solution) as in the paper, which is only
    consistent when every candidate is solved before it is featurised.
    """
    from zoo.training.curation.gvendi import encode_sft, gradient_features

    def featurize(records: Sequence[dict[str, Any]]) -> torch.Tensor:
        samples = []
        for r in records:
            sol = r.get("solution") if use_solution else None
            prompt, resp = (r["problem"], str(sol)) if sol else ("", r["problem"])
            samples.append(encode_sft(tokenizer, prompt, resp, max_len=max_len))
        return gradient_features(model, samples, d=d, seed=seed, batch_size=batch_size).cpu()

    return featurize


def config_dict(cfg: PrismaticConfig) -> dict[str, Any]:
    return asdict(cfg)
