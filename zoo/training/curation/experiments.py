"""The G-Vendi claim in miniature: does the gradient diversity of a training subset predict held-out accuracy?

The paper (arXiv 2505.20161) reports Spearman rho ~ 0.9 between G-Vendi of a training set and out-of-distribution
accuracy over 300+ runs at 7B scale. Here, on a CPU:

1. Gradient features of the whole pool under a proxy model (`gvendi.gradient_features`), and spherical k-means
   into `clusters` groups.
2. `subsets` training subsets of equal size whose diversity is varied on purpose: subset j draws uniformly from
   the first c_j clusters, with c_j spread from 1 to `clusters` (the last is a uniform random subset).
3. G-Vendi of each subset (features of its rows).
4. For each subset, a fresh copy of the model is fine-tuned (SFT, response tokens only, AdamW, `steps` steps),
   then evaluated on the held-out file: `accuracy` = share of items whose final-answer tokens are all argmax
   predictions under teacher forcing on the gold solution; `token_accuracy` = argmax accuracy over all response
   tokens (a smoother signal for tiny models).
5. Spearman rho of G-Vendi vs each metric, with its p-value, written (atomically) to a results JSON that also
   holds every subset's row; finished subsets are not recomputed on a rerun.

Data files are JSONL with `problem`, `solution` and `answer`; `write_nano_tiny_data` produces them from the
nano-tiny arithmetic corpus. Whatever rho comes out is reported; at this scale it may well be near zero.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ZooError
from zoo.training.curation.gvendi import SFTSample, encode_sft, gradient_features, gvendi, sft_loss
from zoo.training.curation.prismatic import kmeans
from zoo.training.curation.stage import read_jsonl, require, write_jsonl_atomic, write_text_atomic


@dataclass
class StudyConfig:
    """Knobs of the study.

    Attributes:
        model: zoo entry (tiny profile) or checkpoint directory of the model trained on each subset.
        proxy: model for gradient features; `model` when None.
        tiny: load `model` / `proxy` entries with `tiny=True` (ignored for directories).
        subsets: number of training subsets.
        subset_size: rows per subset.
        clusters: k-means groups used to vary diversity.
        steps: SFT steps per subset.
        batch_size: SFT batch size.
        lr: AdamW learning rate.
        d: G-Vendi projection dimension.
        max_len: token cap per sample.
        heldout_limit: held-out items evaluated.
        seed: everything is seeded from this.
    """

    model: str = "nano-9b-v2"
    proxy: str | None = None
    tiny: bool = True
    subsets: int = 6
    subset_size: int = 64
    clusters: int = 6
    steps: int = 60
    batch_size: int = 8
    lr: float = 3e-3
    d: int = 256
    max_len: int = 160
    heldout_limit: int = 64
    seed: int = 0


def write_nano_tiny_data(train_out: str | Path, heldout_out: str | Path, n_train: int = 512,
                         n_heldout: int = 128, seed: int = 0) -> None:
    """Pool and held-out JSONL from the nano-tiny arithmetic corpus (held-out questions never occur in the pool)."""
    from zoo.training.nano_tiny.corpus import problems

    def rows(ps: Sequence[Any]) -> list[dict[str, Any]]:
        return [{"problem": p.question, "solution": f"{p.trace}\n{p.answer_text}", "answer": str(p.answer),
                 "n_ops": p.n_ops} for p in ps]

    train = problems(seed, n_train)
    held = problems(seed + 1, n_heldout, exclude={p.question for p in train})
    write_jsonl_atomic(train_out, rows(train))
    write_jsonl_atomic(heldout_out, rows(held))


def _load(name: str, tiny: bool, seed: int) -> Any:
    import zoo

    m = zoo.load(name, tiny=tiny and not Path(name).is_dir(), seed=seed)
    if getattr(m, "tokenizer", None) is None:
        raise ZooError(f"{name}: the study needs a model with a tokenizer")
    return m


def _rows(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for where, rec in read_jsonl(path):
        for k in ("problem", "solution", "answer"):
            require(rec, k, where, (str, int, float))
        out.append(rec)
    return out


def _answer_mask(tok: Any, sample: SFTSample, answer: str) -> list[bool]:
    """Response positions holding the final answer's tokens (the last occurrence of its token ids)."""
    ans = tok(str(answer), add_special_tokens=False)["input_ids"]
    ids = list(sample.input_ids)
    for start in range(len(ids) - len(ans), -1, -1):
        if ids[start:start + len(ans)] == ans and sample.response_mask[start]:
            return [start <= i < start + len(ans) for i in range(len(ids))]
    # Tokenisation in context differed (e.g. a merged leading space): fall back to the last response tokens.
    n = max(len(ans), 1)
    resp = [i for i, m in enumerate(sample.response_mask) if m]
    last = set(resp[-n - 1:-1]) if len(resp) > n else set(resp)
    return [i in last for i in range(len(ids))]


def sft_train(model: torch.nn.Module, samples: Sequence[SFTSample], *, steps: int, batch_size: int, lr: float,
              seed: int) -> list[float]:
    """A minimal SFT loop (response-token loss, AdamW, one sample per forward); returns the loss per step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = random.Random(seed)
    model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        batch = [samples[rng.randrange(len(samples))] for _ in range(batch_size)]
        total = 0.0
        for s in batch:
            ids = torch.tensor([s.input_ids])
            out = model(ids)
            loss = sft_loss(out.logits if hasattr(out, "logits") else out, ids, torch.tensor([s.response_mask]))
            (loss / batch_size).backward()
            total += loss.item() / batch_size
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(total)
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model: torch.nn.Module, tok: Any, rows: Sequence[dict[str, Any]], max_len: int) -> dict[str, float]:
    """Teacher-forced answer accuracy and response-token accuracy on held-out rows."""
    model.eval()
    correct, tok_hits, tok_total = 0, 0, 0
    for r in rows:
        s = encode_sft(tok, r["problem"], str(r["solution"]), max_len=max_len)
        ids = torch.tensor([s.input_ids])
        out = model(ids)
        pred = (out.logits if hasattr(out, "logits") else out)[0, :-1].argmax(-1)  # (s-1,) predicts ids[1:]
        hit = pred == ids[0, 1:]
        resp = torch.tensor(s.response_mask[1:])
        ans = torch.tensor(_answer_mask(tok, s, str(r["answer"]))[1:])
        correct += bool(hit[ans].all()) if ans.any() else 0
        tok_hits += int(hit[resp].sum())
        tok_total += int(resp.sum())
    return {"accuracy": correct / max(len(rows), 1), "token_accuracy": tok_hits / max(tok_total, 1)}


def gvendi_study(data: str | Path, heldout: str | Path, out: str | Path, cfg: StudyConfig,
                 log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the study (see the module docstring) and write `out` (JSON); returns the results dict."""
    from scipy.stats import spearmanr

    torch.manual_seed(cfg.seed)
    pool, held = _rows(data), _rows(heldout)[: cfg.heldout_limit]
    if len(pool) < cfg.subset_size:
        raise ZooError(f"{data}: {len(pool)} rows, fewer than subset_size={cfg.subset_size}")
    out = Path(out)
    done: dict[int, dict[str, Any]] = {}
    if out.exists():
        prev = json.loads(out.read_text(encoding="utf-8"))
        if prev.get("config") == asdict(cfg):
            done = {row["subset"]: row for row in prev.get("rows", [])}
    proxy = _load(cfg.proxy or cfg.model, cfg.tiny, cfg.seed + 1)
    base = _load(cfg.model, cfg.tiny, cfg.seed)
    tok = base.tokenizer
    log(f"features of {len(pool)} pool rows under the proxy (d={cfg.d})")
    p_samples = [encode_sft(proxy.tokenizer, r["problem"], str(r["solution"]), max_len=cfg.max_len) for r in pool]
    feats = gradient_features(proxy, p_samples, d=cfg.d, seed=cfg.seed)
    _, assign = kmeans(feats, cfg.clusters, seed=cfg.seed)
    by_cluster = [[i for i in range(len(pool)) if int(assign[i]) == c] for c in range(cfg.clusters)]
    by_cluster = sorted((c for c in by_cluster if c), key=len, reverse=True)
    rng = random.Random(cfg.seed)
    rows: list[dict[str, Any]] = []
    for j in range(cfg.subsets):
        n_clusters = 1 + round(j * (len(by_cluster) - 1) / max(cfg.subsets - 1, 1))
        cand = [i for c in by_cluster[:n_clusters] for i in c]
        if len(cand) < cfg.subset_size:  # not enough rows in the first clusters: top up from the rest
            cand = cand + [i for c in by_cluster[n_clusters:] for i in c]
        idx = rng.sample(cand, cfg.subset_size)
        if j in done:
            rows.append(done[j])
            continue
        score = gvendi(feats[idx])
        model = copy.deepcopy(base)
        t_samples = [encode_sft(tok, pool[i]["problem"], str(pool[i]["solution"]), max_len=cfg.max_len)
                     for i in idx]
        losses = sft_train(model, t_samples, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                           seed=cfg.seed + j)
        metrics = evaluate(model, tok, held, cfg.max_len)
        row = {"subset": j, "clusters_used": n_clusters, "gvendi": score, "final_loss": losses[-1], **metrics}
        rows.append(row)
        log(json.dumps(row))
        _write(out, cfg, rows, None)
    res = _write(out, cfg, rows, spearmanr)
    return res


def _write(out: Path, cfg: StudyConfig, rows: list[dict[str, Any]], spearmanr: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"config": asdict(cfg), "rows": rows}
    if spearmanr is not None:
        g = [r["gvendi"] for r in rows]
        for key in ("accuracy", "token_accuracy"):
            vals = [r[key] for r in rows]
            if len(set(vals)) > 1 and len(set(g)) > 1:
                rho, p = spearmanr(g, vals)
                rho, p = float(rho), float(p)
            else:  # a constant column has no rank correlation
                rho, p = float("nan"), float("nan")
            suffix = "" if key == "accuracy" else "_token"
            res[f"spearman_rho{suffix}"], res[f"spearman_p{suffix}"] = rho, p
    write_text_atomic(out, json.dumps(res, indent=1) + "\n")
    return res
