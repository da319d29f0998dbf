"""SSD scan and step: chunked == naive recurrence == paper minimal == transformers' fallback; steps == scan; grads."""

from __future__ import annotations

import pytest
import torch

from zoo.kernels import dispatch
from zoo.kernels.ssd import ssd_minimal, ssd_ref, ssd_scan, ssd_step

TOL = {"atol": 2e-5, "rtol": 1e-5}


def _inputs(b: int = 2, seqlen: int = 37, h: int = 4, p: int = 8, g: int = 2, n: int = 16, seed: int = 0,
            dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(b, seqlen, h, p, generator=gen).to(dtype),
        # Step sizes spanning the realistic range (softplus outputs 1e-3 .. 1) so decays differ across heads.
        "dt": (torch.rand(b, seqlen, h, generator=gen) * 0.6 + 1e-3).to(dtype),
        "A": -(torch.rand(h, generator=gen) * 4 + 0.1),
        "B": torch.randn(b, seqlen, g, n, generator=gen).to(dtype),
        "C": torch.randn(b, seqlen, g, n, generator=gen).to(dtype),
        "D": torch.randn(h, generator=gen),
    }


def _close(name: str, got: torch.Tensor, want: torch.Tensor, **tol: float) -> None:
    print(f"{name}: max |diff| = {(got.float() - want.float()).abs().max().item():.3e}")
    torch.testing.assert_close(got, want, **(tol or TOL))


@pytest.fixture(autouse=True)
def _torch_backend():
    with dispatch.force_backend("torch"):
        yield


@pytest.mark.parametrize("chunk_size", [1, 5, 8, 16, 64])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_chunked_scan_matches_recurrence(chunk_size: int, groups: int) -> None:
    t = _inputs(g=groups)
    init = torch.randn(2, 4, 8, 16, generator=torch.Generator().manual_seed(1))
    y_ref, s_ref = ssd_ref(**t, initial_state=init)
    y, s = ssd_scan(**t, chunk_size=chunk_size, initial_state=init)
    assert y.shape == (2, 37, 4, 8) and s.shape == (2, 4, 8, 16) and s.dtype == torch.float32
    _close("y", y, y_ref)
    _close("final state", s, s_ref)


def test_scan_without_D_and_without_initial_state() -> None:
    t = _inputs()
    t["D"] = None
    y_ref, s_ref = ssd_ref(**t)
    y, s = ssd_scan(**t, chunk_size=16)
    _close("y", y, y_ref)
    _close("state", s, s_ref)
    # D is exactly the skip term: adding it back moves y by D * x.
    D = torch.randn(4)
    y_d, _ = ssd_scan(**t | {"D": D}, chunk_size=16)
    _close("skip", y_d - y, t["x"] * D.view(1, 1, 4, 1))


def test_matches_paper_minimal_version() -> None:
    t = _inputs(seqlen=32, g=1)
    del t["D"]
    init = torch.randn(2, 4, 8, 16)
    y_min, s_min = ssd_minimal(**t, chunk_size=8, initial_state=init)
    y, s = ssd_scan(**t, chunk_size=8, initial_state=init)
    _close("y", y, y_min)
    _close("state", s, s_min)


@pytest.mark.parametrize("chunk_size", [1, 4, 8, 64])
def test_seq_idx_resets_state(chunk_size: int) -> None:
    t = _inputs()
    # Row 0: three documents (one boundary inside a chunk, one on a chunk edge for chunk 4/8); ids not monotone.
    seq_idx = torch.tensor([[7] * 8 + [2] * 13 + [7] * 16, [0] * 37])
    y_ref, s_ref = ssd_ref(**t, seq_idx=seq_idx)
    y, s = ssd_scan(**t, chunk_size=chunk_size, seq_idx=seq_idx)
    _close("y", y, y_ref)
    _close("state", s, s_ref)
    # A document's outputs equal those of running it alone.
    alone, alone_state = ssd_scan(**{k: (v[:1, 21:] if v.dim() > 1 else v) for k, v in t.items()}, chunk_size=8)
    _close("last document alone", y[:1, 21:], alone)
    _close("last document state", s[:1], alone_state)


def test_seq_idx_with_initial_state_raises() -> None:
    t = _inputs()
    with pytest.raises(ValueError, match="seq_idx"):
        ssd_scan(**t, chunk_size=8, seq_idx=torch.zeros(2, 37, dtype=torch.long),
                 initial_state=torch.zeros(2, 4, 8, 16))


def test_empty_sequence_passes_state_through() -> None:
    t = {k: (v[:, :0] if v.dim() > 1 else v) for k, v in _inputs().items()}
    init = torch.randn(2, 4, 8, 16)
    y, s = ssd_scan(**t, chunk_size=8, initial_state=init)
    assert y.shape == (2, 0, 4, 8) and torch.equal(s, init)


def test_bad_shapes_raise() -> None:
    t = _inputs()
    with pytest.raises(ValueError, match="multiple of groups"):
        ssd_scan(**t | {"B": torch.randn(2, 37, 3, 16), "C": torch.randn(2, 37, 3, 16)}, chunk_size=8)
    with pytest.raises(ValueError, match="dt must be"):
        ssd_scan(**t | {"dt": torch.rand(2, 36, 4)}, chunk_size=8)


def test_final_states_chain() -> None:
    t = _inputs(seqlen=40)
    y_full, s_full = ssd_scan(**t, chunk_size=16)
    first = {k: (v[:, :23] if v.dim() > 1 else v) for k, v in t.items()}
    second = {k: (v[:, 23:] if v.dim() > 1 else v) for k, v in t.items()}
    y1, s1 = ssd_scan(**first, chunk_size=16)
    y2, s2 = ssd_scan(**second, chunk_size=16, initial_state=s1)
    _close("y chained", torch.cat([y1, y2], dim=1), y_full)
    _close("state chained", s2, s_full)


def test_steps_match_scan() -> None:
    t = _inputs(seqlen=12, g=2)
    init = torch.randn(2, 4, 8, 16)
    y_scan, s_scan = ssd_scan(**t, chunk_size=8, initial_state=init)
    state = init.clone()
    ys = []
    for i in range(12):
        ys.append(ssd_step(state, t["x"][:, i], t["dt"][:, i], t["A"], t["B"][:, i], t["C"][:, i], t["D"]))
    _close("y steps", torch.stack(ys, dim=1), y_scan)
    _close("state steps", state, s_scan)  # updated in place


def test_step_without_D_and_bad_state() -> None:
    t = _inputs(seqlen=1)
    state = torch.zeros(2, 4, 8, 16)
    y = ssd_step(state, t["x"][:, 0], t["dt"][:, 0], t["A"], t["B"][:, 0], t["C"][:, 0])
    y_ref, s_ref = ssd_ref(**t | {"D": None})
    _close("y", y, y_ref[:, 0])
    _close("state", state, s_ref)
    with pytest.raises(ValueError, match="fp32"):
        ssd_step(state.double(), t["x"][:, 0], t["dt"][:, 0], t["A"], t["B"][:, 0], t["C"][:, 0])


def test_bf16_inputs_compute_in_fp32() -> None:
    t = _inputs(dtype=torch.bfloat16)
    y, s = ssd_scan(**t, chunk_size=8)
    assert y.dtype == torch.bfloat16 and s.dtype == torch.float32
    y_ref, s_ref = ssd_ref(**t)  # the reference also runs in fp32 on the same bf16-rounded inputs
    _close("y bf16", y, y_ref, atol=5e-2, rtol=2e-2)  # only the final cast to bf16 differs
    _close("state bf16", s, s_ref, atol=1e-4, rtol=1e-4)


def test_gradients_match_reference() -> None:
    t = _inputs(seqlen=21, g=2)
    t = {k: v.double().requires_grad_() for k, v in t.items()}
    init = torch.randn(2, 4, 8, 16, dtype=torch.float64, requires_grad=True)
    # Both paths compute in fp32 internally, so compare fp32 gradients against each other.
    grads = []
    for fn in (ssd_scan, ssd_ref):
        y, s = fn(**{k: v.float() for k, v in t.items()}, chunk_size=8, initial_state=init.float())
        w = torch.randn_like(y, generator=torch.Generator().manual_seed(3))
        loss = (y * w).sum() + s.square().sum()
        grads.append(torch.autograd.grad(loss, [*t.values(), init]))
    for name, g_scan, g_ref in zip([*t, "initial_state"], *grads, strict=True):
        _close(f"grad {name}", g_scan, g_ref, atol=2e-4, rtol=2e-4)


def test_matches_transformers_chunk_scan() -> None:
    nh = pytest.importorskip("transformers.models.nemotron_h.modeling_nemotron_h")
    t = _inputs(seqlen=45, g=2)
    init = torch.randn(2, 4, 8, 16)
    y_hf, s_hf = nh.mamba2_chunk_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], 16, D=t["D"], initial_states=init,
                                      return_final_states=True)
    y, s = ssd_scan(**t, chunk_size=16, initial_state=init)
    _close("y vs transformers", y, y_hf)
    _close("state vs transformers", s, s_hf)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_kernels_match_torch() -> None:
    pytest.importorskip("mamba_ssm")
    t = {k: v.cuda() for k, v in _inputs(seqlen=300, h=8, p=64, g=2, n=64, dtype=torch.float32).items()}
    init = torch.randn(2, 8, 64, 64, device="cuda")
    with dispatch.force_backend("cuda", ops=("ssd",)):
        y, s = ssd_scan(**t, chunk_size=64, initial_state=init)
        state = s.clone()
        y_step = ssd_step(state, t["x"][:, -1], t["dt"][:, -1], t["A"], t["B"][:, -1], t["C"][:, -1], t["D"])
    y_ref, s_ref = ssd_scan(**t, chunk_size=64, initial_state=init)
    state_ref = s_ref.clone()
    y_step_ref = ssd_step(state_ref, t["x"][:, -1], t["dt"][:, -1], t["A"], t["B"][:, -1], t["C"][:, -1], t["D"])
    _close("cuda scan", y, y_ref, atol=1e-2, rtol=1e-2)
    _close("cuda state", s, s_ref, atol=1e-2, rtol=1e-2)
    _close("cuda step", y_step, y_step_ref, atol=1e-2, rtol=1e-2)


def test_chunk_longer_than_cpu_cap_matches_reference() -> None:
    # chunk_size 128 > CPU_MAX_CHUNK on a 150-token input: the cap must not change the result.
    t = _inputs(seqlen=150)
    y_ref, s_ref = ssd_ref(**t)
    y, s = ssd_scan(**t, chunk_size=128)
    _close("y", y, y_ref)
    _close("state", s, s_ref)
