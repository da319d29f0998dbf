"""G-Vendi: the score's defining properties and the per-sample gradient features of a proxy model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from zoo.training.curation.gvendi import (
    GVendiAccumulator,
    RademacherProjector,
    SFTSample,
    encode_sft,
    gradient_features,
    gvendi,
    sft_loss,
    vendi_direct,
)


class TinyCausalLM(torch.nn.Module):
    """Embedding -> causal running mean -> MLP -> vocab head; returns an object with `.logits` like zoo models."""

    def __init__(self, vocab: int = 50, hidden: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Embedding(vocab, hidden)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.Tanh())
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> SimpleNamespace:
        x = self.emb(ids)  # (b, s, h)
        steps = torch.arange(1, ids.shape[-1] + 1, dtype=x.dtype).view(-1, 1)
        x = x.cumsum(-2) / steps  # causal: position t sees tokens <= t
        return SimpleNamespace(logits=self.head(self.mlp(x)))


def test_identical_samples_score_one():
    g = torch.randn(1, 64).repeat(50, 1) * torch.rand(50, 1).add(0.5)  # same direction, different norms
    assert gvendi(g) == pytest.approx(1.0, abs=1e-9)


def test_orthonormal_set_scores_d():
    d = 32
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    assert gvendi(q) == pytest.approx(d, rel=1e-9)
    # Repeating every vector the same number of times leaves the spectrum (and the score) unchanged.
    assert gvendi(q.repeat(3, 1)) == pytest.approx(d, rel=1e-9)


@pytest.mark.parametrize("n,d", [(20, 64), (200, 16)])
def test_matches_direct_kernel_eigendecomposition(n, d):
    torch.manual_seed(n)
    x = torch.randn(n, d) + 0.3 * torch.randn(1, d)  # correlated rows: a score strictly between 1 and min(n, d)
    fast, direct = gvendi(x, batch=7), vendi_direct(x)
    assert 1.0 < fast < min(n, d)
    assert fast == pytest.approx(direct, rel=1e-8)


def test_increases_when_distinct_data_is_added():
    torch.manual_seed(0)
    base = torch.randn(1, 64) + 0.05 * torch.randn(40, 64)  # one tight cluster
    acc = GVendiAccumulator(64)
    acc.update(base)
    before = acc.score()
    acc.update(torch.randn(1, 64) + 0.05 * torch.randn(40, 64))  # a second, distinct cluster
    assert acc.score() > before * 1.5
    with pytest.raises(ValueError, match="features must be"):
        acc.update(torch.randn(3, 5))


def test_projector_is_seeded_blockwise_and_norm_preserving():
    x = torch.randn(4, 1000)
    p1 = RademacherProjector(1000, 256, seed=3, block=128)
    p2 = RademacherProjector(1000, 256, seed=3, block=128, cache_bytes=0)  # regenerated each call
    torch.testing.assert_close(p1(x), p2(x))
    torch.testing.assert_close(p1(x), p1(x))
    assert not torch.allclose(p1(x), RademacherProjector(1000, 256, seed=4, block=128)(x))
    # Johnson-Lindenstrauss: norms survive the 1/sqrt(d) scaled projection within a few percent at d = 256.
    ratio = p1(x).norm(dim=1) / x.norm(dim=1)
    assert torch.all((ratio > 0.8) & (ratio < 1.2)), ratio


def _samples(n: int, seed: int = 0, vocab: int = 50) -> list[SFTSample]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        p = torch.randint(0, vocab, (5,), generator=g).tolist()
        r = torch.randint(0, vocab, (4,), generator=g).tolist()
        out.append(SFTSample(tuple(p + r), tuple([False] * 5 + [True] * 4)))
    return out


def test_gradient_features_match_manual_gradient_and_ignore_prompt_loss():
    model = TinyCausalLM()
    s = _samples(3)
    feats = gradient_features(model, s, d=64, seed=0, batch_size=2, normalize=False)
    # Manual: gradient of the response-only loss of sample 1, projected with the same seeded matrix.
    ids = torch.tensor([s[1].input_ids])
    mask = torch.tensor([s[1].response_mask])
    model.zero_grad()
    sft_loss(model(ids).logits, ids, mask).backward()
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    want = RademacherProjector(flat.numel(), 64, seed=0)(flat[None])[0]
    torch.testing.assert_close(feats[1], want, rtol=1e-4, atol=1e-5)
    # A sample's features do not depend on the batch it is computed in.
    torch.testing.assert_close(feats, gradient_features(model, s, d=64, seed=0, batch_size=3, normalize=False))


def test_sft_loss_uses_response_tokens_only():
    logits = torch.randn(1, 6, 10)
    ids = torch.randint(0, 10, (1, 6))
    mask = torch.tensor([[False, False, False, True, True, True]])
    logits2 = logits.clone()
    logits2[0, :2] += 5 * torch.randn(2, 10)  # positions 0,1 predict prompt tokens 1,2: outside the loss
    assert sft_loss(logits, ids, mask) == pytest.approx(float(sft_loss(logits2, ids, mask)))


def test_vmap_and_loop_agree():
    model = TinyCausalLM(seed=1)
    s = _samples(5, seed=2)
    a = gradient_features(model, s, d=32, method="loop", batch_size=5)
    b = gradient_features(model, s, d=32, method="vmap", batch_size=5)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert torch.allclose(a.norm(dim=1), torch.ones(5))


def test_gradient_gvendi_separates_repeated_from_varied_data():
    model = TinyCausalLM(seed=0)
    same = _samples(1, seed=5) * 12
    varied = _samples(12, seed=6)
    g_same = gvendi(gradient_features(model, same, d=128))
    g_varied = gvendi(gradient_features(model, varied, d=128))
    assert g_same == pytest.approx(1.0, abs=1e-4)
    assert g_varied > 3.0


def test_encode_sft_masks_the_prompt():
    from zoo.tokenizers import tiny_tokenizer

    tok = tiny_tokenizer("chatml")
    s = encode_sft(tok, "What is 2 + 2?", "It is 4.", max_len=64)
    n_resp = sum(s.response_mask)
    assert 0 < n_resp < len(s.input_ids)
    assert s.response_mask[-1] and not s.response_mask[0]
    assert tok.decode(list(s.input_ids[-n_resp:]), skip_special_tokens=True).strip() == "It is 4."
    short = encode_sft(tok, "long prompt " * 50, "It is 4.", max_len=16)
    assert len(short.input_ids) == 16 and sum(short.response_mask) == n_resp


def test_features_on_the_hybrid_mamba_backbone():
    import zoo

    m = zoo.load("nano-9b-v2", tiny=True, seed=0)
    a = encode_sft(m.tokenizer, "Add 3 and 4.", "3 + 4 = 7. The answer is 7.", max_len=32)
    b = encode_sft(m.tokenizer, "Name a prime.", "Seven is prime.", max_len=32)
    feats = gradient_features(m, [a, a, b], d=64)
    assert torch.isfinite(feats).all() and torch.allclose(feats.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(feats[0], feats[1])
    assert gvendi(feats[:2]) == pytest.approx(1.0, abs=1e-5) and gvendi(feats) > 1.1
    # torch.func also runs through the zoo backbone (Mamba scan, conv, attention) and agrees with the loop.
    torch.testing.assert_close(gradient_features(m, [a, b], d=64, method="vmap"), feats[1:], rtol=1e-4, atol=1e-5)
