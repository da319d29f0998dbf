"""Rollouts: G sampled responses per prompt with the batched generator, then one scoring forward pass.

    prompts --render--> token ids --repeat G--> zoo.generate (HybridCache, batched) --> responses
    responses --> `build_batch` (left-padded prompt | response | right padding) --> `score_batch`: a no-grad
    forward of the policy (and of the reference) giving log pi_old, log pi_ref and the entropy of
    softmax(logits / T) at every sampled token.

Design choices:
* The sampled tokens are kept as ids (never re-tokenised from text), so the loss sees exactly what was sampled.
* Rows are laid out as [left padding | prompt | response | right padding]: the backbone takes left padding in the
  mask, and trailing padding cannot influence earlier positions of a causal model, so it is marked as attended
  and simply masked out of the loss.
* A response is *truncated* when it used the whole budget without an end token (eos or a stop token); that is
  what overlong filtering masks.
* Text given to the reward = the prompt's `<think>` pre-fill (when the generation prompt ends inside one) + the
  decoded response, so format rules see the whole assistant turn (as `zoo eval` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from zoo.generate import generate
from zoo.training.rl.loss import token_logprobs

__all__ = ["Rollout", "render_prompt", "think_prefill", "sample", "build_batch", "score_batch", "mean_entropy",
           "probe_entropy", "pick_temperature", "end_token_ids"]


def render_prompt(model: Any, row: Mapping[str, Any], thinking: bool | None = None) -> str:
    """The generation prompt of a row: `prompt` messages (or `question` as one user turn) in the model's format."""
    from zoo.chat import build_prompt

    messages = row.get("prompt")
    if messages is None:
        messages = [{"role": "user", "content": str(row["question"])}]
    think = row.get("thinking", thinking) if thinking is None else thinking
    return build_prompt(model, messages, thinking=think, tools=row.get("tools"))


def think_prefill(prompt_text: str) -> str:
    """The reasoning pre-fill at the end of a generation prompt ("<think>\\n", "<think></think>", ...) or ""."""
    i = prompt_text.rfind("<think>")
    if i < 0:
        return ""
    tail = prompt_text[i:]
    rest = tail[len("<think>"):].replace("</think>", "", 1)
    # Only a pre-fill at the very end counts: text after it would be an earlier turn's content.
    return tail if rest.strip() == "" else ""


def end_token_ids(model: Any) -> set[int]:
    """Token ids that end a response: the tokenizer's eos plus the config's eos ids."""
    ids = set(getattr(getattr(model, "config", None), "eos_token_ids", None) or [])
    eos = getattr(getattr(model, "tokenizer", None), "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    return ids


@dataclass
class Rollout:
    """The sampled responses of a batch of prompts, G consecutive rows per prompt.

    Attributes:
        prompt_ids: Per response, the prompt's token ids.
        response_ids: Per response, the sampled ids (end token included when one ended it).
        truncated: Per response, True when the budget ran out before an end token.
        texts: Per response, pre-fill + decoded response (what the reward reads).
        group_size: G.
    """

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    truncated: list[bool]
    texts: list[str]
    group_size: int


@torch.no_grad()
def sample(model: Any, prompts: Sequence[str], *, group_size: int, max_new_tokens: int, temperature: float,
           top_p: float = 1.0, batch_size: int = 64, seed: int = 0) -> Rollout:
    """Sample `group_size` responses for every prompt text with `zoo.generate` (batched over the HybridCache).

    Args:
        model: A zoo language model with `tokenizer`.
        prompts: Rendered generation prompts.
        group_size: G.
        max_new_tokens: Response budget.
        temperature: Sampling temperature (> 0).
        top_p: Nucleus mass.
        batch_size: Sequences decoded together.
        seed: Chunk k of the batch samples with seed `seed + k` (reproducible, independent of the global RNG).
    """
    tok = model.tokenizer
    was_training = model.training
    model.eval()
    ids = [list(tok(p, add_special_tokens=False).input_ids) for p in prompts]
    rows = [p for p in ids for _ in range(group_size)]
    prefills = [think_prefill(p) for p in prompts for _ in range(group_size)]
    ends = end_token_ids(model)
    out: list[list[int]] = []
    for k, i in enumerate(range(0, len(rows), batch_size)):
        out += generate(model, rows[i:i + batch_size], max_new_tokens=max_new_tokens, temperature=temperature,
                        top_p=top_p, seed=seed + k)
    if was_training:
        model.train()
    truncated = [len(r) >= max_new_tokens and (not r or r[-1] not in ends) for r in out]
    texts = [pf + tok.decode(r, skip_special_tokens=False) for pf, r in zip(prefills, out)]
    return Rollout(rows, out, truncated, texts, group_size)


def build_batch(prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                pad_id: int) -> dict[str, Tensor]:
    """Training rows for prompt + response pairs.

    Shapes: n = responses, L = longest prompt + longest response.

    Returns:
        `input_ids` (n, L), `attention_mask` (n, L) (0 on left padding only), `targets` (n, L) (the next token,
        pad where none), `response_mask` (n, L) (1 where the target is a response token).
    """
    n = len(prompt_ids)
    P = max(len(p) for p in prompt_ids)
    R = max(max((len(r) for r in response_ids), default=0), 1)
    L = P + R
    input_ids = torch.full((n, L), pad_id, dtype=torch.long)
    attn = torch.ones((n, L), dtype=torch.long)
    targets = torch.full((n, L), pad_id, dtype=torch.long)
    resp = torch.zeros((n, L), dtype=torch.float32)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids)):
        start = P - len(p)
        attn[i, :start] = 0
        input_ids[i, start:P] = torch.tensor(p, dtype=torch.long)
        if r:
            input_ids[i, P:P + len(r)] = torch.tensor(r, dtype=torch.long)
            # Position t predicts token t + 1: the response's tokens are the targets of positions P-1 .. P+len-2.
            targets[i, P - 1:P + len(r) - 1] = torch.tensor(r, dtype=torch.long)
            resp[i, P - 1:P + len(r) - 1] = 1.0
    return {"input_ids": input_ids, "attention_mask": attn, "targets": targets, "response_mask": resp}


@torch.no_grad()
def score_batch(model: nn.Module, batch: Mapping[str, Tensor], *, temperature: float,
                micro_batch_size: int = 8) -> tuple[Tensor, Tensor]:
    """Log-probs of the targets and token entropies under softmax(logits / T), no grad.

    Returns:
        logp (n, L) and entropy (n, L), fp32, on the CPU.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lps, ents = [], []
    n = batch["input_ids"].shape[0]
    for i in range(0, n, micro_batch_size):
        out = model(batch["input_ids"][i:i + micro_batch_size].to(device),
                    attention_mask=batch["attention_mask"][i:i + micro_batch_size].to(device))
        logits = out.logits if hasattr(out, "logits") else out
        lp, ent = token_logprobs(logits, batch["targets"][i:i + micro_batch_size].to(device), temperature)
        lps.append(lp.cpu())
        ents.append(ent.cpu())
    if was_training:
        model.train()
    return torch.cat(lps), torch.cat(ents)


def mean_entropy(entropy: Tensor, mask: Tensor) -> float:
    """AceReason-1.1's H_T: mean over sampled tokens (mask (n, L)) of the per-token entropy (natural log)."""
    return float((entropy * mask).sum() / mask.sum().clamp_min(1.0))


def probe_entropy(model: Any, prompts: Sequence[str], *, temperature: float, max_new_tokens: int,
                  group_size: int = 2, seed: int = 0) -> float:
    """H_T of the policy on a short probe: sample at `temperature`, then average the token entropies."""
    roll = sample(model, prompts, group_size=group_size, max_new_tokens=max_new_tokens, temperature=temperature,
                  seed=seed, batch_size=max(len(prompts) * group_size, 1))
    pad = getattr(model.tokenizer, "pad_token_id", None) or 0
    batch = build_batch(roll.prompt_ids, roll.response_ids, pad)
    _, ent = score_batch(model, batch, temperature=temperature)
    return mean_entropy(ent, batch["response_mask"])


def pick_temperature(model: Any, prompts: Sequence[str], *, target: float = 0.3,
                     candidates: Sequence[float] = (0.6, 0.7, 0.8, 0.85, 0.9, 1.0, 1.1, 1.2),
                     max_new_tokens: int = 256, seed: int = 0) -> tuple[float, dict[float, float]]:
    """The temperature-adjusted entropy rule (AceReason-1.1): the candidate T whose H_T is closest to `target`.

    The paper tunes T on short runs, watching H_T at the start of training; this probes the *initial* policy only
    (one sampling pass per candidate), which is the cheap half of that procedure. Ties go to the lower T.

    Returns:
        (chosen T, {T: H_T} for every candidate).
    """
    if not candidates:
        raise ValueError("pick_temperature needs at least one candidate")
    h = {float(t): probe_entropy(model, prompts, temperature=float(t), max_new_tokens=max_new_tokens, seed=seed)
         for t in candidates}
    best = min(sorted(h), key=lambda t: abs(h[t] - target))
    return best, h
