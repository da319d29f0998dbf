"""SSD: the state-space-duality scan of Mamba-2, chunked, with its one-step decode update.

Paper: Dao & Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through Structured State Space
Duality" (ICML 2024), arXiv:2405.21060, section 6 (the chunked algorithm) and listing 1 (the minimal version).
Official code: https://github.com/state-spaces/mamba (`mamba_ssm/ops/triton/ssd_combined.py`).

The recurrence, per batch row and head (state ``S`` is ``(p, n)``)::

    S_t = exp(dt_t * A) * S_{t-1} + dt_t * x_t B_t^T        y_t = S_t C_t + D * x_t

Layering (see style.md, kernels):

* :func:`ssd_scan` / :func:`ssd_step`: the public functionals. They dispatch once (``zoo.kernels.dispatch``) to
  ``mamba_ssm``'s Triton kernels on CUDA when installed, else to the torch implementations below.
* :func:`ssd_scan_torch`: the chunked algorithm in plain torch, vectorised over chunks except for the short
  inter-chunk state pass (one multiply-add per chunk). Autograd differentiates it directly.
* :func:`ssd_ref`: the naive per-timestep recurrence: the reference every other path is tested against.
* :func:`ssd_minimal`: the paper's listing (quadratic segment-sum over chunks, no groups, no ``seq_idx``), kept as
  documentation and as a third opinion in the tests.

Design choices:

* All internal math is fp32 whatever ``x.dtype`` (the cumulative sum of ``dt * A`` loses too much in bf16); the
  output is cast back to ``x.dtype``, the state stays fp32.
* ``B``/``C`` are never repeated over heads: heads are viewed as ``(g, h // g)`` so each group's ``B``/``C`` is
  broadcast to its contiguous block of heads (the ``repeat_interleave`` convention of the checkpoints).
* Padding the length to a multiple of ``chunk_size`` uses ``dt = 0``, which neither decays nor feeds the state, so
  the final state is exact.
* ``seq_idx`` (packed documents) is turned into a monotone segment id (``cumsum`` of "id changed"), so equality of
  segment ids between two positions means "no document boundary in between"; decay terms across a boundary are 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.kernels import dispatch

CPU_MAX_CHUNK = 64  # torch path on CPU: chunk length cap (see ssd_scan_torch)

__all__ = ["ssd_scan", "ssd_step", "ssd_scan_torch", "ssd_step_torch", "ssd_ref", "ssd_minimal"]


# ---------------------------------------------------------------------------------------------------------------
# Argument checks shared by every path
# ---------------------------------------------------------------------------------------------------------------


def _check_scan_args(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, initial_state: Tensor | None,
    seq_idx: Tensor | None,
) -> None:
    if x.dim() != 4:
        raise ValueError(f"ssd: x must be (batch, seqlen, heads, head_dim), got shape {tuple(x.shape)}")
    b, seqlen, h, p = x.shape
    if dt.shape != (b, seqlen, h):
        raise ValueError(f"ssd: dt must be {(b, seqlen, h)} to match x, got {tuple(dt.shape)}")
    if A.shape != (h,):
        raise ValueError(f"ssd: A must be ({h},), got {tuple(A.shape)}")
    if B.dim() != 4 or B.shape[:2] != (b, seqlen) or B.shape != C.shape:
        raise ValueError(f"ssd: B and C must both be (batch, seqlen, groups, state), got {tuple(B.shape)}, "
                         f"{tuple(C.shape)} for x {tuple(x.shape)}")
    if h % B.shape[2] != 0:
        raise ValueError(f"ssd: heads ({h}) must be a multiple of groups ({B.shape[2]})")
    if D is not None and D.shape != (h,):
        raise ValueError(f"ssd: D must be ({h},), got {tuple(D.shape)}")
    n = B.shape[3]
    if initial_state is not None and initial_state.shape != (b, h, p, n):
        raise ValueError(f"ssd: initial_state must be {(b, h, p, n)}, got {tuple(initial_state.shape)}")
    if seq_idx is not None:
        if seq_idx.shape != (b, seqlen):
            raise ValueError(f"ssd: seq_idx must be {(b, seqlen)}, got {tuple(seq_idx.shape)}")
        if initial_state is not None:
            raise ValueError("ssd: initial_state cannot be combined with seq_idx (packed documents start from zero)")


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _segment_ids(seq_idx: Tensor) -> Tensor:
    """Monotone segment ids: 0 for the first document of each row, +1 at every change of ``seq_idx``.

    Args:
        seq_idx: (b, l) document ids, any integers.

    Returns:
        (b, l) int64, non-decreasing along l.
    """
    changed = seq_idx[:, 1:] != seq_idx[:, :-1]
    return F.pad(changed.long().cumsum(-1), (1, 0))


# ---------------------------------------------------------------------------------------------------------------
# Public functionals
# ---------------------------------------------------------------------------------------------------------------


def ssd_scan(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    *,
    chunk_size: int,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Chunked SSD (Mamba-2) scan over a whole sequence.

    Shapes: b batch, l sequence length, h heads, p head dim, g groups (``h % g == 0``; head ``i`` uses group
    ``i // (h // g)``), n state size.

    Args:
        x: (b, l, h, p) inputs.
        dt: (b, l, h) step sizes, already positive (softplus and any clamp are the caller's job).
        A: (h,) fp32, negative.
        B: (b, l, g, n) input projections.
        C: (b, l, g, n) output projections.
        chunk_size: chunk length Q; ``l`` need not be a multiple of it.
        D: (h,) skip weights (``y += D * x``), or None for no skip.
        initial_state: (b, h, p, n) fp32 state before the first token, or None for zeros.
        seq_idx: (b, l) int document ids of packed sequences: the state resets wherever the id changes. Cannot be
            combined with ``initial_state``.

    Returns:
        y: (b, l, h, p) in ``x.dtype``; final_state: (b, h, p, n) fp32, the state after the last token.
    """
    _check_scan_args(x, dt, A, B, C, D, initial_state, seq_idx)
    if chunk_size < 1:
        raise ValueError(f"ssd: chunk_size must be >= 1, got {chunk_size}")
    if dispatch.use_cuda_kernel("ssd", x):
        return _ssd_scan_mamba_ssm(x, dt, A, B, C, chunk_size=chunk_size, D=D, initial_state=initial_state,
                                   seq_idx=seq_idx)
    return ssd_scan_torch(x, dt, A, B, C, chunk_size=chunk_size, D=D, initial_state=initial_state, seq_idx=seq_idx)


def ssd_step(
    state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None
) -> Tensor:
    """One decode step of the SSD recurrence; ``state`` is updated in place.

    Args:
        state: (b, h, p, n) fp32 state, overwritten with the new state.
        x: (b, h, p) input of this token.
        dt: (b, h) step sizes, already positive.
        A: (h,) fp32, negative.
        B: (b, g, n) input projection of this token.
        C: (b, g, n) output projection of this token.
        D: (h,) skip weights, or None.

    Returns:
        y: (b, h, p) in ``x.dtype``.
    """
    b, h, p = x.shape
    if state.shape[:3] != (b, h, p) or state.dim() != 4:
        raise ValueError(f"ssd_step: state must be (b, h, p, n) = {(b, h, p, 'n')}, got {tuple(state.shape)}")
    if state.dtype != torch.float32:
        raise ValueError(f"ssd_step: state must be fp32 (it accumulates), got {state.dtype}")
    if B.dim() != 3 or B.shape != C.shape or B.shape[0] != b or h % B.shape[1] != 0 or B.shape[2] != state.shape[3]:
        raise ValueError(f"ssd_step: B and C must be (b, g, n) with h % g == 0, got {tuple(B.shape)}, "
                         f"{tuple(C.shape)} for state {tuple(state.shape)}")
    if dispatch.use_cuda_kernel("ssd", x):
        return _ssd_step_mamba_ssm(state, x, dt, A, B, C, D)
    return ssd_step_torch(state, x, dt, A, B, C, D)


# ---------------------------------------------------------------------------------------------------------------
# Torch: chunked scan
# ---------------------------------------------------------------------------------------------------------------


def ssd_scan_torch(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    *,
    chunk_size: int,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The chunked SSD algorithm in plain torch (CPU and any device); arguments and returns as :func:`ssd_scan`.

    On CPU the chunk length is capped at ``CPU_MAX_CHUNK``: the output is the same up to rounding, and shorter
    chunks are faster there.
    """
    b, seqlen, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    hg = h // g  # heads per group
    if seqlen == 0:  # nothing to scan: the state passes through unchanged
        state0 = initial_state.float().clone() if initial_state is not None else x.new_zeros(b, h, p, n).float()
        return x.new_empty(b, 0, h, p), state0
    # The result does not depend on the chunk length (only rounding does), so on CPU we cap it where the
    # quadratic intra-chunk work stops paying for the fewer inter-chunk states (measured: 32-64 beat 128 there).
    if x.device.type == "cpu":
        chunk_size = min(chunk_size, CPU_MAX_CHUNK)
    Q = min(chunk_size, seqlen)  # a chunk longer than the sequence only wastes padding
    nc = -(-seqlen // Q)  # number of chunks
    pad = nc * Q - seqlen
    out_dtype = x.dtype

    # fp32 throughout: the decay exponents are cumulative sums of dt * A.
    xf, dtf, Bf, Cf = x.float(), dt.float(), B.float(), C.float()
    if pad:
        # dt = 0 on padding: no decay and no input, so the final state is the state after token l - 1.
        xf = F.pad(xf, (0, 0, 0, 0, 0, pad))
        dtf = F.pad(dtf, (0, 0, 0, pad))
        Bf = F.pad(Bf, (0, 0, 0, 0, 0, pad))
        Cf = F.pad(Cf, (0, 0, 0, 0, 0, pad))
    seg = None
    if seq_idx is not None:
        seg = _segment_ids(seq_idx)
        if pad:
            seg = torch.cat([seg, seg[:, -1:].expand(b, pad)], dim=1)  # padding belongs to the last document
        seg = seg.view(b, nc, Q)

    # Chunk views. Heads are split as (g, hg) so B/C broadcast over the heads of their group without a copy.
    xc = xf.view(b, nc, Q, g, hg, p)
    Bc = Bf.view(b, nc, Q, g, n)
    Cc = Cf.view(b, nc, Q, g, n)
    dA = (dtf * A.float()).view(b, nc, Q, g, hg)  # (b, c, Q, g, hg), <= 0
    cs = dA.cumsum(dim=2)  # (b, c, Q, g, hg): log-decay from the chunk start to each position, inclusive
    xdt = xc * dtf.view(b, nc, Q, g, hg, 1)  # (b, c, Q, g, hg, p): the input term dt_s * x_s

    # 1. Within each chunk: y_t += sum_{s<=t} (C_t . B_s) exp(cs_t - cs_s) dt_s x_s  (the "attention" form).
    csh = cs.permute(0, 1, 3, 4, 2)  # (b, c, g, hg, Q)
    logL = csh.unsqueeze(-1) - csh.unsqueeze(-2)  # (b, c, g, hg, Q_t, Q_s)
    keep = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
    if seg is not None:
        keep = keep & (seg.unsqueeze(-1) == seg.unsqueeze(-2)).view(b, nc, 1, 1, Q, Q)
    # Mask before exp: above the diagonal cs_t - cs_s > 0 and can overflow, and inf * 0 would give nan.
    # These (b, c, g, hg, Q, Q) tensors are the largest of the scan; logL is fresh, so mask and exp act in place
    # (autograd allows both: sub does not save its output, exp saves the result it overwrote into).
    L = logL.masked_fill_(~keep, float("-inf")).exp_()
    CB = torch.einsum("bctgn,bcsgn->bcgts", Cc, Bc)  # (b, c, g, Q_t, Q_s), shared by the group's heads
    if _needs_grad(x, dt, A, B, C):
        W = L * CB.unsqueeze(3)  # (b, c, g, hg, Q_t, Q_s)
    else:
        W = L.mul_(CB.unsqueeze(3))  # inference: no third Q x Q buffer
    y = torch.matmul(W, xdt.permute(0, 1, 3, 4, 2, 5))  # (b, c, g, hg, Q, p)
    y = y.permute(0, 1, 4, 2, 3, 5)  # (b, c, Q, g, hg, p) view

    # 2. State contributed by each chunk alone: sum_s exp(cs_end - cs_s) dt_s x_s B_s^T.
    decay_to_end = torch.exp(cs[:, :, -1:] - cs)  # (b, c, Q, g, hg)
    if seg is not None:
        # Only tokens of the chunk's last document survive into the state it hands on.
        decay_to_end = decay_to_end * (seg == seg[:, :, -1:]).view(b, nc, Q, 1, 1)
    chunk_states = torch.einsum("bcsgh,bcsghp,bcsgn->bcghpn", decay_to_end, xdt, Bc)  # (b, c, g, hg, p, n)

    # 3. Pass states across chunks: S_in[c] = exp(sum dA over chunk c-1) * S_in[c-1] + chunk_states[c-1].
    # One small multiply-add per chunk; linear in the number of chunks (the paper's segsum form is quadratic).
    chunk_decay = torch.exp(cs[:, :, -1])  # (b, c, g, hg)
    if seg is not None:
        # The carried state survives into chunk c only if chunk c's end is in the same document as chunk c-1's end.
        same = torch.ones(b, nc, dtype=torch.bool, device=x.device)
        same[:, 1:] = seg[:, 1:, -1] == seg[:, :-1, -1]
        chunk_decay = chunk_decay * same.view(b, nc, 1, 1)
    if initial_state is not None:
        state = initial_state.float().reshape(b, g, hg, p, n)
    else:
        state = xf.new_zeros(b, g, hg, p, n)
    if _needs_grad(x, dt, A, B, C, *(() if initial_state is None else (initial_state,))):
        states_in = []
        for c in range(nc):
            states_in.append(state)
            state = chunk_decay[:, c, :, :, None, None] * state + chunk_states[:, c]
        S_in = torch.stack(states_in, dim=1)  # (b, c, g, hg, p, n): state entering each chunk
    else:
        # Inference: write each state straight into its slot (no per-chunk allocation, no final stack copy).
        S_in = xf.new_empty(b, nc, g, hg, p, n)
        S_in[:, 0] = state
        for c in range(1, nc):
            torch.addcmul(chunk_states[:, c - 1], chunk_decay[:, c - 1, :, :, None, None], S_in[:, c - 1],
                          out=S_in[:, c])
        state = chunk_decay[:, -1, :, :, None, None] * S_in[:, -1] + chunk_states[:, -1]

    # 4. Contribution of the incoming state: y_t += exp(cs_t) C_t . S_in.
    decay_from_start = torch.exp(cs)  # (b, c, Q, g, hg)
    if seg is not None:
        # The incoming state belongs to the document at the previous chunk's end; a reset before t cuts it.
        prev_end = torch.cat([seg[:, :1, :1], seg[:, :-1, -1:]], dim=1)  # (b, c, 1)
        decay_from_start = decay_from_start * (seg == prev_end).view(b, nc, Q, 1, 1)
    # Accumulate into the fresh, contiguous einsum output so the final reshape is a view, not a copy.
    y = torch.einsum("bctgn,bcghpn,bctgh->bctghp", Cc, S_in, decay_from_start).add_(y)

    y = y.reshape(b, nc * Q, h, p)[:, :seqlen]
    if D is not None:
        y = y.addcmul_(xf[:, :seqlen], D.float().view(1, 1, h, 1))
    return y.to(out_dtype), state.reshape(b, h, p, n)


# ---------------------------------------------------------------------------------------------------------------
# Torch: one decode step
# ---------------------------------------------------------------------------------------------------------------


def ssd_step_torch(
    state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None
) -> Tensor:
    """One SSD step in torch, updating ``state`` in place; arguments and returns as :func:`ssd_step`.

    Written as in-place ``mul_`` + ``baddbmm_`` and one ``bmm`` over (batch * groups) so a decode step allocates
    only the small (b, h, p) temporaries, never a (b, h, p, n) one.
    """
    b, h, p, n = state.shape
    g = B.shape[1]
    hg = h // g
    dtf = dt.float()
    xf = x.float()
    decay = torch.exp(dtf * A.float())  # (b, h)
    state.mul_(decay.view(b, h, 1, 1))
    # state[b, g, (hg p), n] += (dt x)[b, g, (hg p), 1] @ B[b, g, 1, n]
    st = state.view(b * g, hg * p, n)
    xdt = (xf * dtf.unsqueeze(-1)).view(b * g, hg * p, 1)
    st.baddbmm_(xdt, B.float().reshape(b * g, 1, n))
    # y[b, g, 1, (hg p)] = C[b, g, 1, n] @ state^T: the transposed form runs a faster GEMM kernel on CPU than
    # state @ C (a batched matrix-vector product), measured 1.5-2x at b = 1 and 8.
    y = torch.bmm(C.float().reshape(b * g, 1, n), st.transpose(1, 2)).view(b, h, p)
    if D is not None:
        y = y.addcmul_(xf, D.float().view(1, h, 1))
    return y.to(x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Reference and minimal versions
# ---------------------------------------------------------------------------------------------------------------


def ssd_ref(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    *,
    chunk_size: int | None = None,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    seq_idx: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The naive per-timestep recurrence: the reference. Same signature as :func:`ssd_scan` (``chunk_size`` unused).

    Returns:
        y: (b, l, h, p) in ``x.dtype``; final_state: (b, h, p, n) fp32.
    """
    _check_scan_args(x, dt, A, B, C, D, initial_state, seq_idx)
    b, seqlen, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    Bh = B.float().repeat_interleave(h // g, dim=2)  # (b, l, h, n): head i uses group i // (h // g)
    Ch = C.float().repeat_interleave(h // g, dim=2)
    xf, dtf, Af = x.float(), dt.float(), A.float()
    state = initial_state.float().clone() if initial_state is not None else xf.new_zeros(b, h, p, n)
    ys = []
    for t in range(seqlen):
        if seq_idx is not None and t > 0:
            reset = (seq_idx[:, t] != seq_idx[:, t - 1]).view(b, 1, 1, 1)
            state = torch.where(reset, torch.zeros_like(state), state)
        decay = torch.exp(dtf[:, t] * Af).view(b, h, 1, 1)
        state = decay * state + (dtf[:, t, :, None] * xf[:, t])[..., None] * Bh[:, t, :, None, :]
        y = torch.einsum("bhpn,bhn->bhp", state, Ch[:, t])
        if D is not None:
            y = y + D.float().view(1, h, 1) * xf[:, t]
        ys.append(y)
    y = torch.stack(ys, dim=1) if ys else xf.new_zeros(b, 0, h, p)
    return y.to(x.dtype), state


def _segsum(z: Tensor) -> Tensor:
    """out[..., i, j] = sum(z[..., j+1 : i+1]) for j <= i, else -inf (stable: masked cumsum, no subtraction)."""
    T = z.shape[-1]
    zz = z.unsqueeze(-1).expand(*z.shape, T)  # zz[..., i, j] = z[..., i]
    zz = zz.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=z.device).tril(-1), 0.0)
    out = zz.cumsum(dim=-2)
    return out.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=z.device).tril(0), float("-inf"))


def ssd_minimal(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, chunk_size: int, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The paper's minimal chunked SSD (listing 1), restated: one group, ``l % chunk_size == 0``, no D, fp32.

    Args:
        x: (b, l, h, p); dt: (b, l, h); A: (h,); B, C: (b, l, 1, n); initial_state: (b, h, p, n) or None.

    Returns:
        y: (b, l, h, p); final_state: (b, h, p, n).
    """
    b, seqlen, h, p = x.shape
    n = B.shape[-1]
    Q = chunk_size
    c = seqlen // Q
    X = (x * dt.unsqueeze(-1)).float().view(b, c, Q, h, p)
    Ad = (dt * A).float().view(b, c, Q, h).permute(0, 3, 1, 2)  # (b, h, c, Q)
    Bm = B.float().view(b, c, Q, n)
    Cm = C.float().view(b, c, Q, n)
    A_cs = Ad.cumsum(-1)
    # Diagonal blocks: outputs from inputs of the same chunk.
    Lm = torch.exp(_segsum(Ad))  # (b, h, c, Q, Q)
    Y_diag = torch.einsum("bcln,bcsn,bhcls,bcshp->bclhp", Cm, Bm, Lm, X)
    # Each chunk's own final state, then the recurrence over chunks as one segment-sum matrix.
    decay_states = torch.exp(A_cs[..., -1:] - A_cs)
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", Bm, decay_states, X)
    init = initial_state.float() if initial_state is not None else x.new_zeros(b, h, p, n, dtype=torch.float32)
    states = torch.cat([init.unsqueeze(1), states], dim=1)  # (b, c+1, h, p, n)
    decay_chunk = torch.exp(_segsum(F.pad(A_cs[..., -1], (1, 0))))  # (b, h, c+1, c+1)
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = new_states[:, :-1], new_states[:, -1]
    # Off-diagonal blocks: outputs from the state entering each chunk.
    Y_off = torch.einsum("bcln,bchpn,bhcl->bclhp", Cm, states, torch.exp(A_cs))
    return (Y_diag + Y_off).reshape(b, seqlen, h, p), final


# ---------------------------------------------------------------------------------------------------------------
# CUDA: mamba_ssm's Triton kernels (public API), used only through dispatch
# ---------------------------------------------------------------------------------------------------------------


def _ssd_scan_mamba_ssm(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, chunk_size: int, D: Tensor | None,
    initial_state: Tensor | None, seq_idx: Tensor | None,
) -> tuple[Tensor, Tensor]:
    mamba_chunk_scan_combined = dispatch.load("mamba_ssm").mamba_chunk_scan_combined
    # dt arrives positive: no dt_bias, no softplus, and the kernel's default dt_limit (0, inf) clamps nothing.
    y, final = mamba_chunk_scan_combined(
        x, dt, A.float(), B, C, chunk_size, D=D, initial_states=initial_state,
        seq_idx=None if seq_idx is None else _segment_ids(seq_idx).to(torch.int32), dt_softplus=False,
        return_final_states=True,
    )
    return y, final.float()


def _ssd_step_mamba_ssm(
    state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None
) -> Tensor:
    selective_state_update = dispatch.load("mamba_ssm").selective_state_update
    b, h, p, n = state.shape
    # The kernel takes per-(head, dim) dt and per-(head, dim, state) A; stride-0 views make it use its tied-dim path.
    dt_e = dt.unsqueeze(-1).expand(b, h, p)
    A_e = A.float().view(h, 1, 1).expand(h, p, n)
    D_e = None if D is None else D.view(h, 1).expand(h, p)
    # A zero dt_bias, also stride 0: the kernel reads dt_bias.stride(-1) to choose that path even when none is given.
    zero_bias = dt.new_zeros(h, 1).expand(h, p)
    return selective_state_update(state, x, dt_e, A_e, B, C, D=D_e, dt_bias=zero_bias, dt_softplus=False)
