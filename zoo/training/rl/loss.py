"""The GRPO objective: group-normalised advantages and a token-level clipped policy-gradient loss.

    A_i    = (r_i - mean_G r) / (std_G r + eps)                    one scalar per response, shared by its tokens
    ratio  = exp(log pi(y_t) - log pi_old(y_t))                     per response token
    pg_t   = max(-A ratio, -A clip(ratio, 1 - eps_low, 1 + eps_high))
    kl_t   = exp(d) - d - 1,  d = log pi_ref(y_t) - log pi(y_t)     k3: unbiased, always >= 0, low variance
    loss   = sum over response tokens of the batch (pg_t + beta kl_t - c_ent H_t) / number of those tokens

Token-level normalisation (AceReason: "sum over all tokens of the batch / total tokens") weighs every token
alike, so long responses are not down-weighted as in per-sequence averaging. `LossOut` returns the *sum* and the
token count; `zoo.training.loop.train_step` divides by the global count, which makes the update independent of
how the batch is split into micro-batches.

Strictly on-policy (one update per rollout), `pi_old` is the current policy itself: `old = logp.detach()`, the
ratio is exactly 1 with gradient `grad log pi`, clipping never bites and the loss gradient equals the plain
policy gradient `-sum A grad log pi / N` (tested).

Deviations and choices (the papers leave them open):
* std is the population std of the group (ddof 0) plus eps 1e-6; all-equal groups get A = 0 (and are usually
  dropped, `drop_equal_groups`).
* Log-probabilities and the entropy are those of softmax(logits / T) with T the sampling temperature, i.e. of
  the distribution the tokens were drawn from (as verl does); the reference model uses the same T.
* The KL term is the k3 estimator as a loss term (Tool-N1 / verl "low_var_kl"), not a reward penalty; verl also
  clamps it to [-10, 10], we do not (k3 >= 0 and our tiny runs never come close).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.training.loop import LossOut

__all__ = ["group_advantages", "token_logprobs", "policy_loss", "GRPOLoss"]

EPS = 1e-6


def group_advantages(rewards: Tensor, group_size: int, *, std_normalize: bool = True) -> tuple[Tensor, Tensor]:
    """Group-normalised advantages.

    Args:
        rewards: (n,) rewards, consecutive blocks of `group_size` responses belong to one prompt.
        group_size: G.
        std_normalize: Divide by the group's std (GRPO); False keeps the mean-centred reward.

    Returns:
        advantages (n,) and `equal` (n,) bool: True where the response's group has all-equal rewards.
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)  # (groups, G)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True, unbiased=False)
    adv = r - mean
    if std_normalize:
        adv = adv / (std + EPS)
    equal = (r == r[:, :1]).all(dim=1, keepdim=True).expand_as(r)
    return adv.reshape(-1), equal.reshape(-1)


def token_logprobs(logits: Tensor, targets: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Log-probabilities of the target tokens and the entropy, both under softmax(logits / T).

    Shapes: b = rows, s = positions, v = vocabulary.

    Args:
        logits: (b, s, v) raw logits.
        targets: (b, s) the token at the next position (pre-shifted); any valid id where it is masked out.
        temperature: T of the sampling distribution.

    Returns:
        logp (b, s) and entropy (b, s), fp32, natural log.
    """
    # fp32 before the softmax: bf16 log-probs are too coarse for ratios of nearly equal policies.
    logp_all = F.log_softmax(logits.float() / temperature, dim=-1)  # (b, s, v)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def policy_loss(logp: Tensor, advantages: Tensor, mask: Tensor, *, old_logp: Tensor | None = None,
                ref_logp: Tensor | None = None, entropy: Tensor | None = None, clip_eps: float = 0.2,
                clip_eps_high: float | None = None, kl_coef: float = 0.0,
                entropy_coef: float = 0.0) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """The token-level GRPO loss, summed (not averaged) over the masked tokens.

    Args:
        logp: (b, s) log pi of the sampled tokens (with grad).
        advantages: (b,) one advantage per response.
        mask: (b, s) 1 at response tokens that enter the loss, 0 elsewhere (prompt, padding, filtered samples).
        old_logp: (b, s) log pi_old of the rollout policy; None = on-policy (`logp.detach()`).
        ref_logp: (b, s) log pi_ref for the KL term (needed when kl_coef > 0).
        entropy: (b, s) token entropies (needed when entropy_coef > 0; reported when given).
        clip_eps: Lower clip of the ratio.
        clip_eps_high: Upper clip; None = clip_eps.
        kl_coef: beta.
        entropy_coef: Entropy bonus weight.

    Returns:
        (loss_sum scalar, token count scalar, metric sums {"pg", "kl", "entropy", "clip_frac"}).
    """
    mask = mask.float()
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)  # (b, s); exactly 1 on-policy, with gradient d log pi
    adv = advantages.float()[:, None]  # (b, 1)
    hi = clip_eps if clip_eps_high is None else clip_eps_high
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + hi)
    pg = torch.maximum(unclipped, clipped)  # pessimistic bound of PPO
    per_token = pg
    metrics = {"pg": (pg * mask).sum().detach(),
               "clip_frac": ((clipped > unclipped).float() * mask).sum().detach()}
    if kl_coef > 0:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs ref_logp")
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1.0
        per_token = per_token + kl_coef * kl
        metrics["kl"] = (kl * mask).sum().detach()
    if entropy is not None:
        if entropy_coef > 0:
            per_token = per_token - entropy_coef * entropy
        metrics["entropy"] = (entropy * mask).sum().detach()
    elif entropy_coef > 0:
        raise ValueError("entropy_coef > 0 needs entropy")
    return (per_token * mask).sum(), mask.sum(), metrics


class GRPOLoss:
    """`loop.LossFn` for GRPO micro-batches.

    Batch keys (b rows, s positions): `input_ids`, `attention_mask` (left padding), `targets` (next tokens),
    `loss_mask`, `advantages` (b,); optional `old_logp`, `ref_logp` (b, s).
    """

    def __init__(self, *, temperature: float, clip_eps: float = 0.2, clip_eps_high: float | None = None,
                 kl_coef: float = 0.0, entropy_coef: float = 0.0) -> None:
        self.temperature = temperature
        self.clip_eps, self.clip_eps_high = clip_eps, clip_eps_high
        self.kl_coef, self.entropy_coef = kl_coef, entropy_coef

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOut:
        out = model(batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits if hasattr(out, "logits") else out
        logp, ent = token_logprobs(logits, batch["targets"], self.temperature)
        loss_sum, count, metrics = policy_loss(
            logp, batch["advantages"], batch["loss_mask"], old_logp=batch.get("old_logp"),
            ref_logp=batch.get("ref_logp"), entropy=ent, clip_eps=self.clip_eps, clip_eps_high=self.clip_eps_high,
            kl_coef=self.kl_coef, entropy_coef=self.entropy_coef)
        return LossOut(loss_sum, count, metrics)
