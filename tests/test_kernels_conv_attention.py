"""Causal conv1d (full, stateful, packed, step) and attention (SDPA path vs explicit softmax), plus dispatch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.kernels import dispatch
from zoo.kernels.attention import attention, attention_ref
from zoo.kernels.conv import causal_conv1d, causal_conv1d_ref, causal_conv1d_step


def _close(name: str, got: torch.Tensor, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    print(f"{name}: max |diff| = {(got.float() - want.float()).abs().max().item():.3e}")
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)


@pytest.fixture(autouse=True)
def _torch_backend():
    with dispatch.force_backend("torch"):
        yield


def _conv_inputs(b: int = 2, d: int = 6, seqlen: int = 19, k: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, seqlen, generator=gen), torch.randn(d, k, generator=gen), torch.randn(d, generator=gen),
            torch.randn(b, d, k, generator=gen))


# ---------------------------------------------------------------------------------------------------------------
# conv
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["silu", None])
def test_conv_matches_F_conv1d(activation: str | None) -> None:
    x, w, bias, _ = _conv_inputs()
    y, final = causal_conv1d(x, w, bias, activation=activation)
    want = F.conv1d(x, w.unsqueeze(1), bias, padding=3, groups=6)[..., :19]
    _close("conv vs F.conv1d", y, F.silu(want) if activation else want)
    assert final is None


@pytest.mark.parametrize("use_init", [False, True])
@pytest.mark.parametrize("use_seq", [False, True])
def test_conv_matches_reference(use_init: bool, use_seq: bool) -> None:
    x, w, bias, init = _conv_inputs()
    seq_idx = torch.tensor([[4] * 2 + [9] * 10 + [4] * 7, [1] * 19]) if use_seq else None
    kw = {"initial_state": init if use_init else None, "seq_idx": seq_idx, "return_final_state": True}
    y, final = causal_conv1d(x, w, bias, **kw)
    y_ref, final_ref = causal_conv1d_ref(x, w, bias, **kw)
    _close("conv", y, y_ref)
    _close("final", final, final_ref)
    if use_seq:
        # The last document (7 tokens, starting at 12) behaves as if run alone.
        alone, alone_final = causal_conv1d(x[:1, :, 12:], w, bias, return_final_state=True)
        _close("document alone", y[:1, :, 12:], alone)
        _close("document final", final[:1], alone_final)


def test_conv_final_state_short_input_zero_padded() -> None:
    x, w, bias, init = _conv_inputs(seqlen=2)
    _, final = causal_conv1d(x, w, bias, return_final_state=True)
    assert final.shape == (2, 6, 4)
    assert torch.equal(final[..., :2], torch.zeros(2, 6, 2)) and torch.equal(final[..., 2:], x)
    _, final = causal_conv1d(x, w, bias, initial_state=init, return_final_state=True)
    assert torch.equal(final, torch.cat([init[..., 2:], x], dim=-1))


def test_conv_states_chain_and_step_matches_full() -> None:
    x, w, bias, init = _conv_inputs()
    y_full, final_full = causal_conv1d(x, w, bias, initial_state=init, return_final_state=True)
    y1, s1 = causal_conv1d(x[..., :7], w, bias, initial_state=init, return_final_state=True)
    y2, s2 = causal_conv1d(x[..., 7:], w, bias, initial_state=s1, return_final_state=True)
    _close("chained", torch.cat([y1, y2], dim=-1), y_full)
    _close("chained final", s2, final_full)
    state = s1.clone()
    steps = [causal_conv1d_step(x[..., t], state, w, bias) for t in range(7, 19)]
    _close("steps", torch.stack(steps, dim=-1), y_full[..., 7:])
    _close("state after steps", state, final_full)  # updated in place


def test_conv_gradients_match_reference() -> None:
    x, w, bias, init = (t.requires_grad_() for t in _conv_inputs())
    seq_idx = torch.tensor([[0] * 5 + [1] * 14, [0] * 19])
    grads = []
    for fn in (causal_conv1d, causal_conv1d_ref):
        y, final = fn(x, w, bias, initial_state=init, seq_idx=seq_idx, return_final_state=True)
        loss = (y * torch.linspace(-1, 1, 19)).sum() + final.square().sum()
        grads.append(torch.autograd.grad(loss, [x, w, bias, init]))
    for name, a, b in zip(["x", "weight", "bias", "initial_state"], *grads, strict=True):
        _close(f"grad {name}", a, b)


def test_conv_bad_shapes_raise() -> None:
    x, w, bias, init = _conv_inputs()
    with pytest.raises(ValueError, match="initial_state"):
        causal_conv1d(x, w, bias, initial_state=init[..., 1:])
    with pytest.raises(ValueError, match="activation"):
        causal_conv1d(x, w, bias, activation="gelu")


# ---------------------------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------------------------


def _qkv(lq: int, lk: int, hq: int = 4, hkv: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(2, hq, lq, 16, generator=gen), torch.randn(2, hkv, lk, 16, generator=gen),
            torch.randn(2, hkv, lk, 16, generator=gen))


@pytest.mark.parametrize(("lq", "lk"), [(9, 9), (1, 9), (3, 9)])
@pytest.mark.parametrize("hkv", [1, 2, 4])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_reference(lq: int, lk: int, hkv: int, causal: bool) -> None:
    q, k, v = _qkv(lq, lk, hkv=hkv)
    _close("attention", attention(q, k, v, causal=causal), attention_ref(q, k, v, causal=causal))


def test_attention_causal_is_bottom_right_aligned() -> None:
    q, k, v = _qkv(9, 9)
    full = attention(q, k, v, causal=True)
    # The last 3 queries against all 9 keys (the KV-cache case) equal the last 3 rows of the full result.
    _close("suffix queries", attention(q[:, :, 6:], k, v, causal=True), full[:, :, 6:])


def test_attention_padding_mask_and_scale() -> None:
    q, k, v = _qkv(6, 6)
    keep = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    keep[0, ..., :2] = False  # left padding in row 0
    out = attention(q, k, v, causal=True, attn_mask=keep, scale=0.3)
    _close("masked", out, attention_ref(q, k, v, causal=True, attn_mask=keep, scale=0.3))
    assert torch.isfinite(out).all() and torch.equal(out[0, :, :2], torch.zeros(4, 2, 16))  # fully masked rows
    additive = torch.zeros(2, 1, 6, 6).masked_fill(~keep, float("-inf"))
    additive[..., 3] += 0.5
    out_f = attention(q, k, v, causal=True, attn_mask=additive)
    _close("additive", out_f[1], attention_ref(q, k, v, causal=True, attn_mask=additive)[1])


# ---------------------------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------------------------


def test_dispatch_override_nests_and_validates() -> None:
    assert dispatch.backend("ssd") == "torch"  # the autouse fixture
    with dispatch.force_backend("auto", ops=("conv",)):
        assert dispatch.backend("conv") == "auto" and dispatch.backend("ssd") == "torch"
    assert dispatch.backend("conv") == "torch"
    with pytest.raises(ValueError, match="backend"):
        with dispatch.force_backend("triton"):
            pass
    with pytest.raises(ValueError, match="op"):
        dispatch.set_backend("torch", ops=("matmul",))
    # CPU tensors never go to a CUDA kernel, whatever the setting.
    with dispatch.force_backend("auto"):
        assert not dispatch.use_cuda_kernel("ssd", torch.zeros(1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_forcing_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(dispatch.KernelUnavailableError, match="mamba_ssm"):
        with dispatch.force_backend("cuda", ops=("ssd",)):
            pass


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_conv_and_attention_match_torch() -> None:
    x, w, bias, init = (t.cuda() for t in _conv_inputs(d=64, seqlen=300))
    q, k, v = (t.cuda().half() for t in _qkv(33, 33))
    want_conv = causal_conv1d(x, w, bias, initial_state=init, return_final_state=True)
    want_attn = attention(q, k, v, causal=True)
    with dispatch.force_backend("auto"):
        got_conv = causal_conv1d(x, w, bias, initial_state=init, return_final_state=True)
        got_attn = attention(q, k, v, causal=True)
    _close("cuda conv", got_conv[0], want_conv[0], atol=1e-3, rtol=1e-3)
    _close("cuda conv final", got_conv[1], want_conv[1])
    _close("cuda attention", got_attn, want_attn, atol=2e-3, rtol=2e-3)


def test_conv_channel_last_input() -> None:
    # Mixers pass x as a transposed view of a (b, l, d) projection: same result as a contiguous (b, d, l) input.
    x, w, bias, init = _conv_inputs()
    x_cl = x.transpose(1, 2).contiguous().transpose(1, 2)
    assert not x_cl.is_contiguous()
    wide = torch.zeros(2, 19, 11)
    wide[..., 3:9] = x.transpose(1, 2)
    x_slice = wide[..., 3:9].transpose(1, 2)  # a column slice of a wider projection, as a mixer's split gives
    for kw in ({}, {"initial_state": init}):
        y_s, f_s = causal_conv1d(x_slice, w, bias, return_final_state=True, **kw)
        y_cl, f_cl = causal_conv1d(x_cl, w, bias, return_final_state=True, **kw)
        y, f = causal_conv1d(x, w, bias, return_final_state=True, **kw)
        _close("channel-last", y_cl, y)
        _close("channel-last final", f_cl, f)
        _close("column slice", y_s, y)
        _close("column slice final", f_s, f)
        f_s.add_(1.0)  # the returned state must not alias the input
        assert torch.equal(wide[..., 3:9].transpose(1, 2), x)
