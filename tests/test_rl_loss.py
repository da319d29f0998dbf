"""GRPO loss against hand-computed numbers: advantages, masks, token-level normalisation, overlong masking,
clipping, KL; on-policy with one update equals the plain policy gradient."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.training.rl.loss import GRPOLoss, group_advantages, policy_loss, token_logprobs
from zoo.training.rl.rollout import build_batch, mean_entropy, think_prefill
from zoo.training.rl.rules import loss_mask


def test_group_advantages_by_hand():
    # group 1: rewards 1,0,0,1 -> mean .5, population std .5 -> +-1; group 2 all equal -> 0 and flagged
    adv, equal = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 4)
    assert torch.allclose(adv, torch.tensor([1.0, -1.0, -1.0, 1.0, 0, 0, 0, 0]), atol=1e-5)
    assert equal.tolist() == [False] * 4 + [True] * 4
    # 3 of 4 right: mean .75, std sqrt(.1875) = .4330
    adv, _ = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0]), 4)
    s = math.sqrt(0.1875)
    assert torch.allclose(adv, torch.tensor([0.25 / s, 0.25 / s, 0.25 / s, -0.75 / s]), atol=1e-4)
    adv, _ = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0]), 4, std_normalize=False)
    assert torch.allclose(adv, torch.tensor([0.25, 0.25, 0.25, -0.75]))
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), 3)


def test_token_level_normalisation_and_masks_by_hand():
    # Two responses: 3 tokens with A=+1, 1 token with A=-1 (+ a masked prompt position).
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.9], [0.25, 0.9, 0.9, 0.9]]))
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    adv = torch.tensor([1.0, -1.0])
    loss_sum, count, m = policy_loss(logp, adv, mask)
    # On-policy the ratio is 1: loss per token = -A, summed -> -3 + 1 = -2, over 4 tokens (not per sequence).
    assert float(loss_sum) == pytest.approx(-2.0)
    assert float(count) == 4
    assert float(loss_sum / count) == pytest.approx(-0.5)  # per-sequence averaging would give (-1 + 1) / 2 = 0
    assert float(m["clip_frac"]) == 0


def test_on_policy_single_update_equals_plain_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5))
    mask = (torch.rand(3, 5) > 0.3).float()
    adv = torch.tensor([0.7, -1.2, 0.4])
    logp, _ = token_logprobs(logits, targets, temperature=0.8)
    loss_sum, count, _ = policy_loss(logp, adv, mask)
    (g1,) = torch.autograd.grad(loss_sum / count, logits)
    logp2, _ = token_logprobs(logits, targets, temperature=0.8)
    plain = -(adv[:, None] * logp2 * mask).sum() / mask.sum()  # REINFORCE with the group baseline
    (g2,) = torch.autograd.grad(plain, logits)
    assert torch.allclose(g1, g2, atol=1e-7)


def test_clipping_by_hand():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.75, 0.55, 0.25, 0.5]]))  # ratios 1.5, 1.1, 0.5, 1.0
    new.requires_grad_(True)
    mask = torch.ones(1, 4)
    # A > 0: ratio 1.5 is clipped to 1.2 (no gradient), 1.1 and 1.0 pass, 0.5 passes (min picks the unclipped).
    loss, _, m = policy_loss(new, torch.tensor([1.0]), mask, old_logp=old, clip_eps=0.2)
    assert float(loss.detach()) == pytest.approx(-(1.2 + 1.1 + 0.5 + 1.0))
    assert float(m["clip_frac"]) == 1
    (g,) = torch.autograd.grad(loss, new)
    assert g[0, 0] == 0 and g[0, 1] == pytest.approx(-1.1) and g[0, 2] == pytest.approx(-0.5)
    # A < 0: ratio 0.5 is clipped to 0.8 (no gradient), 1.5 stays unclipped (pessimistic bound).
    loss, _, m = policy_loss(new, torch.tensor([-1.0]), mask, old_logp=old, clip_eps=0.2)
    assert float(loss.detach()) == pytest.approx(1.5 + 1.1 + 0.8 + 1.0)
    (g,) = torch.autograd.grad(loss, new)
    assert g[0, 2] == 0 and g[0, 0] == pytest.approx(1.5)
    # Asymmetric upper clip (clip-higher): 1.5 -> 1.28
    loss, _, _ = policy_loss(new.detach(), torch.tensor([1.0]), mask, old_logp=old, clip_eps=0.2, clip_eps_high=0.28)
    assert float(loss.detach()) == pytest.approx(-(1.28 + 1.1 + 0.5 + 1.0))


def test_k3_kl_and_entropy_terms_by_hand():
    logp = torch.log(torch.tensor([[0.5, 0.2]]))
    ref = torch.log(torch.tensor([[0.25, 0.2]]))
    mask = torch.tensor([[1.0, 1.0]])
    ent = torch.tensor([[1.0, 2.0]])
    loss, count, m = policy_loss(logp, torch.tensor([0.0]), mask, ref_logp=ref, entropy=ent, kl_coef=0.1,
                                 entropy_coef=0.01)
    k3 = 0.5 - math.log(0.5) - 1.0  # d = log(.25/.5): e^d - d - 1; the second token has d = 0
    assert float(m["kl"]) == pytest.approx(k3, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(0.1 * k3 - 0.01 * 3.0, rel=1e-5)
    assert float(m["entropy"]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, torch.tensor([0.0]), mask, kl_coef=0.1)


def test_overlong_and_equal_group_masks():
    resp = torch.ones(4, 3)
    mask, keep = loss_mask(resp, truncated=[False, True, False, False],
                           equal_group=torch.tensor([False, False, True, True]), drop_equal=True, overlong_filter=True)
    assert keep.tolist() == [True, False, False, False]
    assert mask.sum() == 3
    mask, keep = loss_mask(resp, truncated=[False, True, False, False],
                           equal_group=torch.tensor([False, False, True, True]), drop_equal=False,
                           overlong_filter=False)
    assert keep.all() and mask.sum() == 12


def test_build_batch_layout_and_temperature_entropy():
    b = build_batch([[7, 8], [9]], [[1, 2, 3], [4]], pad_id=0)
    assert b["input_ids"].tolist() == [[7, 8, 1, 2, 3], [0, 9, 4, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert b["targets"].tolist() == [[0, 1, 2, 3, 0], [0, 4, 0, 0, 0]]
    assert b["response_mask"].tolist() == [[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]]
    # Uniform logits over 4 tokens: entropy log 4 at any T; peaked logits get flatter as T grows.
    _, ent = token_logprobs(torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long), temperature=0.5)
    assert mean_entropy(ent, torch.ones(1, 2)) == pytest.approx(math.log(4), rel=1e-6)
    z = torch.tensor([[[3.0, 0.0, 0.0, 0.0]]])
    h = [float(token_logprobs(z, torch.zeros(1, 1, dtype=torch.long), T)[1]) for T in (0.5, 1.0, 2.0)]
    assert h[0] < h[1] < h[2]


def test_think_prefill():
    assert think_prefill("<SPECIAL_11>Assistant\n<think>\n\n") == "<think>\n\n"
    assert think_prefill("<SPECIAL_11>Assistant\n<think></think>") == "<think></think>"
    assert think_prefill("<|im_start|>assistant\n") == ""
    assert think_prefill("<think>old</think> answer\n<|im_start|>assistant\n") == ""


def test_grpo_loss_fn_runs_on_a_model_batch():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 10)

        def forward(self, ids, attention_mask=None):
            return self.emb(ids)

    b = build_batch([[1, 2]], [[3, 4]], pad_id=0)
    batch = {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"], "targets": b["targets"],
             "loss_mask": b["response_mask"], "advantages": torch.tensor([1.0])}
    out = GRPOLoss(temperature=1.0)(Tiny(), batch)
    assert int(out.count) == 2 and torch.isfinite(out.loss_sum) and "entropy" in out.metrics
