"""FP8 recipe: quantisation error bounds, scaling edge cases, emulated GEMMs, edge blocks kept in high precision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.kernels.fp8 import (
    FP8_MAX,
    FP8Linear,
    convert_to_fp8,
    dequantize,
    fake_quantize,
    fp8_linear,
    fp8_linear_ref,
    quantize,
    real_fp8_supported,
)


@pytest.mark.parametrize("fmt,bits", [("e4m3", 3), ("e5m2", 2)])
@pytest.mark.parametrize("magnitude", [1e-3, 1.0, 3e4])
def test_quantize_relative_error_bound(fmt, bits, magnitude):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, generator=g) * magnitude
    q, s = quantize(x, fmt)
    assert q.dtype == {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}[fmt]
    # amax maps exactly onto the format's max (per-tensor current scaling).
    assert torch.isclose(q.float().abs().max(), torch.tensor(FP8_MAX[fmt]))
    y = dequantize(q, s)
    # Round-to-nearest: relative error <= 2^-(mantissa+1) for values that land in the normal range.
    normal = (x.abs() * s) >= torch.finfo(q.dtype).smallest_normal
    rel = ((y - x).abs() / x.abs())[normal]
    print(fmt, magnitude, "max rel err", float(rel.max()))
    assert float(rel.max()) <= 2.0 ** -(bits + 1) + 1e-7
    # Below the normal range the error is absolute: at most half a subnormal step.
    step = torch.finfo(q.dtype).smallest_normal / 2**bits / s
    sub_err = (y - x).abs()[~normal]
    if sub_err.numel():
        assert float(sub_err.max()) <= float(step) / 2 * (1 + 1e-5)


def test_zero_and_tiny_tensors():
    q, s = quantize(torch.zeros(8), "e4m3")
    assert float(s) == 1.0 and (q.float() == 0).all()
    x = torch.full((4,), 1e-30)
    assert torch.allclose(fake_quantize(x, "e4m3"), x, rtol=0.07)


def test_fp8_linear_forward_and_backward_match_emulated_reference():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, 32, generator=g, requires_grad=True)
    w = torch.randn(48, 32, generator=g, requires_grad=True)
    b = torch.randn(48, generator=g, requires_grad=True)
    y = fp8_linear(x, w, b)
    assert y.shape == (6, 5, 48)
    torch.testing.assert_close(y, fp8_linear_ref(x, w, b), rtol=1e-5, atol=1e-5)
    # Against the exact fp32 product: E4M3 inputs give ~2^-4 relative error per operand, averaged over k=32.
    exact = x @ w.T + b
    rel = ((y - exact).norm() / exact.norm()).detach()
    assert 1e-4 < float(rel) < 0.06
    dy = torch.randn(6, 5, 48, generator=g)
    y.backward(dy)
    dy2 = dy.reshape(-1, 48)
    # Backward GEMMs see E5M2 gradients and E4M3 saved operands.
    exp_dx = fake_quantize(dy2, "e5m2") @ fake_quantize(w.detach(), "e4m3")
    exp_dw = fake_quantize(dy2, "e5m2").T @ fake_quantize(x.detach().reshape(-1, 32), "e4m3")
    torch.testing.assert_close(x.grad.reshape(-1, 32), exp_dx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.grad, exp_dw, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.grad, dy2.sum(0))
    # The gradient through FP8 is still close to the exact one.
    assert float((x.grad.reshape(-1, 32) - dy2 @ w.detach()).norm() / (dy2 @ w.detach()).norm()) < 0.2


def test_bf16_autocast_output_dtype():
    lin = FP8Linear(16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(torch.randn(3, 16))
    assert y.dtype == torch.bfloat16


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mixer = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))

    def forward(self, x):
        return x + self.mixer(x)


class _Toy(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        self.blocks = nn.ModuleList(_Block() for _ in range(n))
        self.lm_head = nn.Linear(16, 4)

    def forward(self, x):
        x = self.embed(x)
        for b in self.blocks:
            x = b(x)
        return self.lm_head(x)


def test_convert_keeps_edge_blocks_and_state_dict():
    torch.manual_seed(0)
    m = _Toy(10)
    keys = list(m.state_dict())
    params_before = [id(p) for p in m.parameters()]
    x = torch.randn(2, 4)
    y0 = m(x)
    converted = convert_to_fp8(m, bf16_first=4, bf16_last=4, emulate=True)
    assert converted == [4, 5]
    for i, blk in enumerate(m.blocks):
        kinds = {type(mod) for mod in blk.modules() if isinstance(mod, nn.Linear)}
        assert kinds == ({FP8Linear} if i in (4, 5) else {nn.Linear}), i
    assert type(m.embed) is nn.Linear and type(m.lm_head) is nn.Linear
    # Same parameters (optimizer state and checkpoints untouched) and the same state-dict keys.
    assert list(m.state_dict()) == keys and [id(p) for p in m.parameters()] == params_before
    y1 = m(x)
    assert not torch.equal(y0, y1) and torch.allclose(y0, y1, rtol=0.1, atol=0.1)
    y1.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_training_in_fp8_tracks_fp32():
    def run(fp8: bool) -> list[float]:
        torch.manual_seed(0)
        m = _Toy(6)
        if fp8:
            convert_to_fp8(m, bf16_first=1, bf16_last=1, emulate=True)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(0)
        x, t = torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g)
        losses = []
        for _ in range(30):
            loss = ((m(x) - t) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    ref, f8 = run(False), run(True)
    assert f8[-1] < 0.7 * f8[0]
    assert abs(f8[-1] - ref[-1]) / ref[-1] < 0.1


@pytest.mark.skipif(not real_fp8_supported(), reason="needs a CUDA GPU with FP8 tensor cores")
def test_real_scaled_mm_matches_emulation():  # pragma: no cover - GPU only
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(64, 128, device="cuda", generator=g, requires_grad=True)
    w = torch.randn(96, 128, device="cuda", generator=g, requires_grad=True)
    y = fp8_linear(x, w, real=True)
    ref = fp8_linear_ref(x, w)
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert x.grad is not None and w.grad is not None
