"""G-Vendi: diversity of a dataset measured in the gradient space of a small proxy model.

Jung et al., "Prismatic Synthesis: Gradient-based Data Diversification Boosts Generalization in LLM Reasoning"
(arXiv 2505.20161, NeurIPS 2025); README of jaehunjung1/prismatic-synthesis. Section 9 of the algorithm sheet.

Per sample i (a prompt and a response), g_i is the gradient of the SFT loss (mean NLL of the response tokens
given the prompt) w.r.t. the proxy's parameters (all of them by default, as in the reference re-implementation);
it is projected to d dimensions (default 1024) with a seeded Rademacher matrix scaled by 1/sqrt(d) and then
L2-normalised: ĝ_i. With Σ = (1/N) Σ_i ĝ_i ĝ_iᵀ (d x d, trace 1) and eigenvalues λ_k (summing to 1),

    G-Vendi = exp(-Σ_k λ_k log λ_k),   1 <= G-Vendi <= min(N, d).

It equals the Vendi score of the cosine kernel K/N (same non-zero spectrum), but costs O(d² N) instead of O(N³).

Design choices:
* The projection matrix is never materialised whole. Parameters are flattened into blocks of `block` entries; the
  Rademacher rows of block b are regenerated from a generator seeded with (seed, b), so the matrix is a pure
  function of (seed, d, parameter layout) and memory stays at `block x d` (cached across batches when it fits in
  `cache_bytes`). The reference uses TRAK's CUDA projector; its random matrix differs from ours, so values match
  it in distribution, not bit for bit.
* Per-sample gradients: `method="loop"` (default) runs one backward per sample and fills a (batch, D) buffer that
  is projected once per batch: memory batch x D floats, works with any module. `method="vmap"` uses
  `torch.func` (vmap over grad of a functional call) for models whose forward is vmap-compatible.
* The covariance is accumulated in float64 batch by batch (`GVendiAccumulator`), so N is unbounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import ZooError

# ---------------------------------------------------------------------------------------------------------------
# The score
# ---------------------------------------------------------------------------------------------------------------


def vendi_from_covariance(cov: torch.Tensor) -> float:
    """exp(entropy) of the normalised eigenvalues of a PSD matrix (d, d)."""
    lam = torch.linalg.eigvalsh(cov.double()).clamp(min=0.0)
    total = lam.sum()
    if total <= 0:
        raise ValueError("covariance is zero: no features (or all-zero gradients) were accumulated")
    p = lam / total
    p = p[p > 1e-15]  # 0 log 0 = 0; tiny negatives from round-off were clamped above
    return float(torch.exp(-(p * p.log()).sum()))


class GVendiAccumulator:
    """Streams features (n, d) into Σ = (1/N) Σ ĝ ĝᵀ; `score()` gives G-Vendi of everything seen."""

    def __init__(self, d: int) -> None:
        self.d = d
        self.cov = torch.zeros(d, d, dtype=torch.float64)
        self.n = 0

    def update(self, feats: torch.Tensor, *, normalize: bool = True) -> None:
        """Add a batch of features (n, d); rows are L2-normalised first unless `normalize=False`."""
        if feats.ndim != 2 or feats.shape[1] != self.d:
            raise ValueError(f"features must be (n, {self.d}), got {tuple(feats.shape)}")
        x = feats.double()
        if normalize:
            x = F.normalize(x, dim=1)
        self.cov += x.T @ x  # (d, d); O(n d²)
        self.n += x.shape[0]

    def score(self) -> float:
        if self.n == 0:
            raise ValueError("no features accumulated")
        return vendi_from_covariance(self.cov / self.n)


def gvendi(feats: torch.Tensor, *, normalize: bool = True, batch: int = 4096) -> float:
    """G-Vendi of features (n, d), accumulated in batches of `batch` rows."""
    acc = GVendiAccumulator(feats.shape[1])
    for i in range(0, feats.shape[0], batch):
        acc.update(feats[i:i + batch], normalize=normalize)
    return acc.score()


def vendi_direct(feats: torch.Tensor) -> float:
    """Reference: Vendi score from the eigenvalues of the N x N cosine kernel K / N (O(N³); tests only)."""
    x = F.normalize(feats.double(), dim=1)
    k = x @ x.T / x.shape[0]  # (n, n)
    lam = torch.linalg.eigvalsh(k).clamp(min=0.0)
    p = lam / lam.sum()
    p = p[p > 1e-15]
    return float(torch.exp(-(p * p.log()).sum()))


# ---------------------------------------------------------------------------------------------------------------
# Random projection
# ---------------------------------------------------------------------------------------------------------------


class RademacherProjector:
    """x (n, D) -> x R / sqrt(d) with R (D, d) of seeded ±1 entries, generated block by block.

    Args:
        dim_in: D, the flattened gradient size.
        d: output dimension.
        seed: the matrix is a function of (seed, d, D, block) only.
        block: rows of R generated at a time (memory block x d floats).
        cache_bytes: keep generated blocks when the whole R fits in this many bytes (float32).
    """

    def __init__(self, dim_in: int, d: int = 1024, *, seed: int = 0, block: int = 8192,
                 cache_bytes: int = 256 * 2**20) -> None:
        self.dim_in, self.d, self.seed, self.block = dim_in, d, seed, block
        self._cache: dict[int, torch.Tensor] | None = {} if dim_in * d * 4 <= cache_bytes else None

    def _rows(self, b: int, device: torch.device) -> torch.Tensor:
        if self._cache is not None and b in self._cache:
            return self._cache[b].to(device)
        n = min(self.block, self.dim_in - b * self.block)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
        r = torch.randint(0, 2, (n, self.d), generator=g, dtype=torch.int8).float().mul_(2).sub_(1)  # (n, d)
        if self._cache is not None:
            self._cache[b] = r
        return r.to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Project (n, D) -> (n, d) in float32."""
        if x.shape[-1] != self.dim_in:
            raise ValueError(f"expected (n, {self.dim_in}) gradients, got {tuple(x.shape)}")
        out = torch.zeros(x.shape[0], self.d, device=x.device)
        for b in range(math.ceil(self.dim_in / self.block)):
            lo = b * self.block
            out += x[:, lo:lo + self.block].float() @ self._rows(b, x.device)
        return out / math.sqrt(self.d)


# ---------------------------------------------------------------------------------------------------------------
# Per-sample SFT gradients
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SFTSample:
    """Token ids of prompt + response, and which positions are response tokens (the only ones in the loss)."""

    input_ids: tuple[int, ...]
    response_mask: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.response_mask):
            raise ValueError(f"input_ids ({len(self.input_ids)}) and response_mask ({len(self.response_mask)}) differ")
        if not any(self.response_mask[1:]):
            raise ValueError("sample has no response token after the first position: nothing to take a loss on")


def encode_sft(tokenizer: Any, prompt: str, response: str, *, max_len: int = 512) -> SFTSample:
    """Tokenise a (prompt, response) pair; with a chat template the prompt is a user turn and the response the
    assistant turn (the response starts where the generation prompt ends). The prompt is cut from the left when the
    pair is longer than `max_len`, so the response tokens survive."""
    if getattr(tokenizer, "chat_template", None):
        p_ids = list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                   tokenize=True, return_dict=False))
        full = list(tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=True,
            return_dict=False))
        if full[: len(p_ids)] != p_ids:
            raise ZooError("chat template does not extend the prompt when a reply is appended; cannot mask the prompt")
        r_ids = full[len(p_ids):]
    else:
        p_ids = list(tokenizer(prompt)["input_ids"])
        r_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
        if getattr(tokenizer, "eos_token_id", None) is not None:
            r_ids.append(tokenizer.eos_token_id)
    r_ids = r_ids[: max_len - 1]
    p_ids = p_ids[-(max_len - len(r_ids)):] or p_ids[-1:]
    return SFTSample(tuple(p_ids + r_ids), tuple([False] * len(p_ids) + [True] * len(r_ids)))


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return out.logits if hasattr(out, "logits") else out


def sft_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the masked (response) targets. logits (b, s, v), ids (b, s), mask (b, s) bool -> scalar."""
    tgt_mask = mask[:, 1:].float()  # position t predicts token t+1
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")  # (b, s-1)
    return (nll * tgt_mask).sum() / tgt_mask.sum().clamp(min=1.0)


def _trainable(model: torch.nn.Module, param_filter: Callable[[str], bool] | None) -> list[tuple[str, torch.Tensor]]:
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and (param_filter is None or
                                                                                   param_filter(n))]
    if not params:
        raise ZooError("no trainable parameters selected for gradient features")
    return params


def gradient_features(
    model: torch.nn.Module,
    samples: Sequence[SFTSample],
    *,
    d: int = 1024,
    seed: int = 0,
    batch_size: int = 8,
    method: str = "loop",
    param_filter: Callable[[str], bool] | None = None,
    normalize: bool = True,
    projector: RademacherProjector | None = None,
) -> torch.Tensor:
    """Projected (and L2-normalised) per-sample SFT-loss gradients.

    Args:
        model: causal LM, `model(input_ids)` -> logits (b, s, v) or an output with `.logits`.
        samples: encoded (prompt, response) pairs.
        d: projection dimension.
        seed: projection seed.
        batch_size: samples whose full gradients are held at once (memory batch_size x D floats).
        method: "loop" (one backward per sample) or "vmap" (`torch.func`).
        param_filter: parameter-name predicate; all trainable parameters when None.
        normalize: L2-normalise each projected gradient (G-Vendi's ĝ).
        projector: reuse a projector (must match D and d); built from (D, d, seed) when None.

    Returns:
        (N, d) float32 features, on the model's device.
    """
    if method not in ("loop", "vmap"):
        raise ValueError(f"method must be 'loop' or 'vmap', got {method!r}")
    params = _trainable(model, param_filter)
    dim_in = sum(p.numel() for _, p in params)
    proj = projector or RademacherProjector(dim_in, d, seed=seed)
    if proj.dim_in != dim_in or proj.d != d:
        raise ValueError(f"projector is ({proj.dim_in} -> {proj.d}), gradients need ({dim_in} -> {d})")
    dev = params[0][1].device
    was_training = model.training
    model.eval()  # no dropout: a sample's gradient must not depend on the batch it is in
    feats = []
    try:
        for i in range(0, len(samples), batch_size):
            chunk = samples[i:i + batch_size]
            flat = (_vmap_grads if method == "vmap" else _loop_grads)(model, params, chunk, dev)  # (b, D)
            g = proj(flat)
            feats.append(F.normalize(g, dim=1) if normalize else g)
    finally:
        model.train(was_training)
    return torch.cat(feats) if feats else torch.zeros(0, d, device=dev)


def _loop_grads(model: torch.nn.Module, params: list[tuple[str, torch.Tensor]], chunk: Sequence[SFTSample],
                dev: torch.device) -> torch.Tensor:
    tensors = [p for _, p in params]
    out = torch.empty(len(chunk), sum(p.numel() for p in tensors), device=dev)  # (b, D)
    for j, s in enumerate(chunk):
        ids = torch.tensor([s.input_ids], device=dev)
        mask = torch.tensor([s.response_mask], device=dev)
        loss = sft_loss(_logits(model, ids), ids, mask)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        out[j] = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                            for g, p in zip(grads, tensors)])
    return out


def _vmap_grads(model: torch.nn.Module, params: list[tuple[str, torch.Tensor]], chunk: Sequence[SFTSample],
                dev: torch.device) -> torch.Tensor:
    from torch.func import functional_call, grad, vmap

    # Right padding with the mask off: a causal model's earlier positions never see the pad tokens.
    width = max(len(s.input_ids) for s in chunk)
    ids = torch.zeros(len(chunk), width, dtype=torch.long, device=dev)
    mask = torch.zeros(len(chunk), width, dtype=torch.bool, device=dev)
    for j, s in enumerate(chunk):
        ids[j, : len(s.input_ids)] = torch.tensor(s.input_ids)
        mask[j, : len(s.input_ids)] = torch.tensor(s.response_mask)
    names = [n for n, _ in params]
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in set(names)}
    buffers = dict(model.named_buffers())

    def loss_one(p: dict[str, torch.Tensor], ids1: torch.Tensor, mask1: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**frozen, **p, **buffers}, (ids1[None],))
        return sft_loss(out.logits if hasattr(out, "logits") else out, ids1[None], mask1[None])

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))({n: p.detach() for n, p in params}, ids, mask)
    return torch.cat([g[n].reshape(len(chunk), -1).float() for n in names], dim=1)  # (b, D)


def features_for_pairs(model: torch.nn.Module, tokenizer: Any, pairs: Iterable[tuple[str, str]], *,
                       max_len: int = 512, **kw: Any) -> torch.Tensor:
    """`gradient_features` for (prompt, response) strings."""
    samples = [encode_sft(tokenizer, p, r, max_len=max_len) for p, r in pairs]
    return gradient_features(model, samples, **kw)
