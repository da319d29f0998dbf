"""GRPO with verifiable rewards: AceReason-Nemotron, Tool-N1, CrossThink and Llama-Nemotron RL as one recipe.

`zoo train ENTRY grpo [--tiny] [--resume]` loads `recipes/ENTRY/grpo.yaml` into a `GRPORecipe` and calls `grpo`.
One rollout step:

    prompts (curriculum stage's pool) -> render in the model's chat format -> G samples each (zoo.generate)
    -> rewards from zoo.eval verifiers -> group-normalised advantages -> filters (all-equal groups, overlong)
    -> scoring forward (log pi_old, entropy of softmax(z/T), log pi_ref) -> ppo_epochs x mini_batches
    optimizer steps of the token-level loss (`zoo.training.loop.train_step`) -> metrics, checkpoint

Papers: AceReason-Nemotron 1.0 (arXiv 2505.16400) and 1.1 (2506.13284), Nemotron-Research-Tool-N1 (2505.00024),
Nemotron-CrossThink (2504.13941), Llama-Nemotron (2505.00949); facts in `shared/reference/algorithms.md` 6-8, 11.

Deviations from the published algorithms (and choices they leave open):
* Rollouts come from our own batched generator on the training process, not from vLLM workers; one process only
  (no FSDP sharding of rollouts), which is what the tiny and nano-tiny runs need.
* The loss's log-probabilities are recomputed by a forward pass of the policy (no logits from the sampler), under
  softmax(logits / T) with T the sampling temperature (verl's convention; the papers do not say).
* Advantages use the population std of the group plus 1e-6. Truncated responses keep their verifier reward in the
  group statistics; overlong filtering only removes them from the loss (AceReason-1.1: "masked out of the loss").
* Dropping all-equal groups also removes their tokens from the normaliser (DAPO-style dynamic sampling without
  the refill: the batch simply gets smaller; AceReason does not say whether it refills).
* "Solved" for epoch-wise removal means every rollout of the prompt in that epoch got accuracy reward >= 1
  (format bonuses excluded); a pool is never emptied.
* The entropy probe for the training temperature looks at the initial policy only (AceReason-1.1 watched H_T over
  short runs); H_T is logged at every step so the trajectory can be checked afterwards.
* The learning rate is constant within a rollout step (all its optimizer steps use lr_at(rollout step)).
* The KL reference is the policy at the start of the stage run (a frozen copy), as in verl.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.training import checkpoint as ckpt
from zoo.training import loop
from zoo.training.config import import_ref, load_config, recipe_path
from zoo.training.optim import build_optimizer, lr_at
from zoo.training.rewards import RewardError, get_reward, think_format
from zoo.training.rl import rollout as R
from zoo.training.rl.config import GRPORecipe, PromptSource, StageConfig
from zoo.training.rl.loss import GRPOLoss, group_advantages
from zoo.training.rl.rules import PromptError, PromptPool, loss_mask, read_prompts, stage_at

__all__ = ["grpo", "load_grpo_recipe", "run_grpo", "GRPOResult"]

FINAL = "final"


def load_grpo_recipe(path: str | Path, *, tiny: bool = False, overrides: dict[str, Any] | None = None,
                     out: str | Path | None = None) -> GRPORecipe:
    """Read a `grpo.yaml` (errors name file:line); prompt paths resolve against the recipe's directory."""
    cfg = load_config(path, GRPORecipe, tiny=tiny, overrides=overrides, out=out)
    base = Path(path).parent
    for s in cfg.prompts:
        if not Path(s.path).is_absolute():
            s.path = str((base / s.path).resolve())
    return cfg


def run_grpo(entry: str, stage: str = "grpo", *, tiny: bool = False, resume: bool = False,
             out: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Path:
    """`zoo train ENTRY grpo`: run the shipped recipe `recipes/ENTRY/STAGE.yaml`; returns the run root."""
    root = Path(out) if out is not None else Path("runs") / (entry + ("-tiny" if tiny else ""))
    cfg = load_grpo_recipe(recipe_path(entry, stage), tiny=tiny, overrides=overrides, out=root)
    grpo(cfg, resume=resume, out_root=root)
    return root


@dataclass
class GRPOResult:
    """Per-step metrics of this invocation, the run directory and the exported model (None when stopped early)."""

    history: list[dict[str, Any]]
    out_dir: Path
    final: Path | None


# ----------------------------------------------------------------------------------------------------------------
# Hooks and prompt sources


def _call(target: str | None, what: str, *args: Any) -> Any:
    if target is None:
        return None
    return import_ref(target, what)(*args)


class _Sources:
    """Prompt rows per source with their reward functions and per-source switches."""

    def __init__(self, cfg: GRPORecipe, chat_format: str | None) -> None:
        self.cfg = {s.name: s for s in cfg.prompts}
        self.rows = {s.name: read_prompts(s.path, s.name) for s in cfg.prompts}
        self.reward = {s.name: get_reward(s.reward) for s in cfg.prompts}
        self.chat_format = chat_format

    def stage_rows(self, stage: StageConfig) -> list[dict[str, Any]]:
        names = stage.sources or list(self.rows)
        return [r for n in names for r in self.rows[n]]

    def thinking(self, row: dict[str, Any]) -> bool | None:
        src: PromptSource = self.cfg[row["_source"]]
        return src.thinking if src.thinking is not None else row.get("thinking")

    def score(self, row: dict[str, Any], text: str) -> tuple[float, float]:
        """(accuracy reward, total reward) of one response."""
        src: PromptSource = self.cfg[row["_source"]]
        ctx = dict(row)
        ctx.setdefault("chat_format", src.chat_format or self.chat_format)
        ctx.setdefault("require_think", src.require_think)
        think = self.thinking(row)
        ctx["thinking"] = True if think is None else think
        try:
            acc = float(self.reward[src.name](text, ctx))
        except RewardError as e:
            raise PromptError(f"{row['_where']}: {e}") from None
        total = acc + (think_format.score(text, ctx["thinking"]) if src.format_reward else 0.0)
        return acc, total


# ----------------------------------------------------------------------------------------------------------------
# The run


def _micro(batch: dict[str, torch.Tensor], idx: torch.Tensor, size: int) -> list[dict[str, torch.Tensor]]:
    return [{k: v[idx[i:i + size]] for k, v in batch.items()} for i in range(0, len(idx), size)]


def grpo(cfg: GRPORecipe, *, resume: bool = False, out_root: str | Path | None = None,
         stop_after: int | None = None) -> GRPOResult:
    """Run a GRPO recipe end to end and export `train.out_dir/final` (upstream HF layout + tokenizer).

    Args:
        cfg: The validated recipe.
        resume: Continue from the newest checkpoint of `train.out_dir` (model, optimizer, prompt pools, RNG,
            chosen temperature).
        out_root: The run root, passed to the `prepare` and `after` hooks.
        stop_after: Stop after this many rollout steps in total (kill-and-resume tests); no export then.
    """
    from zoo.training.stage import build_model, export

    t, r, a = cfg.train, cfg.rollout, cfg.algo
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    torch.manual_seed(t.seed)
    root = Path(out_root) if out_root is not None else None
    _call(cfg.prepare, "prepare", cfg, root)
    model = build_model(cfg.model, t.seed)
    if cfg.chat_format is not None:
        model.chat_format = cfg.chat_format
    tok = model.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    sources = _Sources(cfg, getattr(model, "chat_format", None))
    # The KL reference is the starting policy: copy it before a resume overwrites the weights.
    ref = copy.deepcopy(model).eval().requires_grad_(False) if a.kl_coef > 0 else None
    opt = build_optimizer(model, cfg.optim)
    pools = [PromptPool(sources.stage_rows(s), seed=t.seed + 1009 * i,
                        remove_solved=a.remove_solved if s.remove_solved is None else s.remove_solved)
             for i, s in enumerate(cfg.stages)]
    out = Path(t.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1, default=str))
    log = loop.MetricsLog(out / "metrics.jsonl")
    start, temperature, elapsed0 = 0, r.temperature, 0.0
    last = ckpt.latest_checkpoint(out) if resume else None
    if last is not None:
        state = ckpt.load_checkpoint(last, model=model, optimizer=opt)
        start = int(state["step"])
        for p, s in zip(pools, state["data"]["pools"]):
            p.load_state_dict(s)
        temperature = float(state["extra"]["temperature"])
        elapsed0 = float(state["extra"].get("elapsed_s", 0.0))
        print(f"grpo: resumed from {last} (step {start})", file=sys.stderr)
    elif r.entropy_probe is not None:
        pr = r.entropy_probe
        rows = pools[0].rows
        probe_rows = [rows[k] for k in sorted(rows)[:pr.prompts]]
        texts = [R.render_prompt(model, row, sources.thinking(row)) for row in probe_rows]
        temperature, hs = R.pick_temperature(model, texts, target=pr.target, candidates=pr.candidates,
                                             max_new_tokens=pr.max_new_tokens, seed=t.seed)
        print("grpo: entropy probe " + ", ".join(f"T={k:g}: H={v:.3f}" for k, v in hs.items())
              + f" -> T={temperature:g}", file=sys.stderr)
        log.write({"step": 0, "probe": {str(k): v for k, v in hs.items()}, "temperature": temperature})

    device = next(model.parameters()).device
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    print(f"grpo: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {t.steps} rollout steps x "
          f"{r.prompts_per_step} prompts x G={r.group_size}, stages "
          + " -> ".join(f"{s.name}({s.steps})" for s in cfg.stages), file=sys.stderr)
    for step in range(start, t.steps):
        if stop_after is not None and step >= stop_after:
            return GRPOResult(history, out, None)
        si, st = stage_at(cfg.stages, step)
        G = st.group_size or r.group_size
        T = st.temperature or temperature
        max_new = st.max_new_tokens or r.max_new_tokens
        overlong = a.overlong_filter if st.overlong_filter is None else st.overlong_filter
        rows = pools[si].next(r.prompts_per_step)
        texts = []
        for row in rows:
            try:
                texts.append(R.render_prompt(model, row, sources.thinking(row)))
            except Exception as e:  # a chat template or render error: name the row
                raise PromptError(f"{row['_where']}: cannot render the prompt: {e}") from None
        roll = R.sample(model, texts, group_size=G, max_new_tokens=max_new, temperature=T, top_p=r.top_p,
                        batch_size=r.batch_size, seed=t.seed * 1_000_003 + 7919 * step)
        scores = [sources.score(rows[j // G], text) for j, text in enumerate(roll.texts)]
        acc = torch.tensor([s[0] for s in scores])
        rewards = torch.tensor([s[1] for s in scores])
        adv, equal = group_advantages(rewards, G, std_normalize=a.std_normalize)
        pools[si].record([row["_key"] for row in rows], (acc.view(-1, G) >= 1.0).all(dim=1).tolist())

        batch = R.build_batch(roll.prompt_ids, roll.response_ids, pad)
        mask, keep = loss_mask(batch["response_mask"], truncated=roll.truncated, equal_group=equal,
                               drop_equal=a.drop_equal_groups, overlong_filter=overlong)
        with loop.autocast_ctx(t.precision, device):
            old_logp, ent = R.score_batch(model, batch, temperature=T, micro_batch_size=t.micro_batch_size)
            ref_logp = (R.score_batch(ref, batch, temperature=T, micro_batch_size=t.micro_batch_size)[0]
                        if ref is not None else None)
        train = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                 "targets": batch["targets"], "loss_mask": mask, "advantages": adv}
        on_policy = a.ppo_epochs == 1 and a.mini_batches == 1
        if not on_policy:
            train["old_logp"] = old_logp
        if ref_logp is not None:
            train["ref_logp"] = ref_logp
        loss_fn = GRPOLoss(temperature=T, clip_eps=a.clip_eps, clip_eps_high=a.clip_eps_high, kl_coef=a.kl_coef,
                           entropy_coef=a.entropy_coef)
        lr = lr_at(step, t.steps, cfg.optim, cfg.schedule)
        kept = torch.nonzero(keep).squeeze(1)
        upd: list[dict[str, float]] = []
        if len(kept) > 0:
            gen = torch.Generator().manual_seed(t.seed + step)
            for epoch in range(a.ppo_epochs):
                order = kept if epoch == 0 else kept[torch.randperm(len(kept), generator=gen)]
                for part in order.tensor_split(min(a.mini_batches, len(order))):
                    upd.append(loop.train_step(model, _micro(train, part, t.micro_batch_size), opt, loss_fn=loss_fn,
                                               lr=lr, grad_clip=cfg.optim.grad_clip, precision=t.precision))
        resp_len = torch.tensor([len(x) for x in roll.response_ids], dtype=torch.float32)
        rec: dict[str, Any] = {
            "step": step + 1, "stage": st.name, "temperature": T, "max_new_tokens": max_new,
            "reward": float(rewards.mean()), "accuracy": float(acc.mean()),
            "entropy_T": R.mean_entropy(ent, batch["response_mask"]),
            "kept_frac": float(keep.float().mean()), "truncated_frac": sum(roll.truncated) / len(roll.truncated),
            "response_len": float(resp_len.mean()), "pool": pools[si].size, "epoch": pools[si].epoch,
            "updates": len(upd), "lr": lr, "tokens": int(mask.sum()),
        }
        if upd:  # the first update is the on-policy one; later ones show the clipping at work
            rec.update({k: v for k, v in upd[0].items() if k not in ("lr", "count")})
            rec["clip_frac_last"] = upd[-1].get("clip_frac", 0.0)
        rec["elapsed_s"] = round(elapsed0 + time.perf_counter() - t0, 2)
        history.append(rec)
        if (step + 1) % max(t.log_every, 1) == 0 or step + 1 == t.steps:
            log.write(rec)
            print(f"grpo step {step + 1}/{t.steps} [{st.name}] reward {rec['reward']:.3f} acc {rec['accuracy']:.3f} "
                  f"H_T {rec['entropy_T']:.3f} kept {rec['kept_frac']:.2f} loss {rec.get('loss', 0.0):+.4f}",
                  file=sys.stderr)
        if (t.ckpt_every and (step + 1) % t.ckpt_every == 0) or step + 1 == t.steps:
            ckpt.save_checkpoint(out, step + 1, model=model, optimizer=opt,
                                 data_state={"pools": [p.state_dict() for p in pools]},
                                 extra={"temperature": temperature, "elapsed_s": rec["elapsed_s"]},
                                 keep=t.keep_checkpoints)
    final = out / FINAL
    export(model, final)
    _call(cfg.after, "after", cfg, root, final)
    return GRPOResult(history, out, final)
