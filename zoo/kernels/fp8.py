"""FP8 linear layers with per-tensor current scaling: the Nemotron-H FP8 pretraining recipe.

Nemotron-H (arXiv 2504.03624, section 2.4; algorithms sheet 4.1):
- every linear layer's GEMMs (forward and both backward GEMMs) run in FP8, except in the first and last N layers
  (N = 4), which stay in BF16;
- "hybrid" format: E4M3 for weights and activations (more mantissa), E5M2 for gradients (more range);
- per-tensor *current* scaling: scale = fp8_max / amax(tensor) computed from the tensor itself at every use, no
  amax history (delayed scaling is Transformer Engine's other option; the paper uses current scaling).

Two paths, chosen once per layer at conversion time:
- `torch._scaled_mm` on GPUs with FP8 tensor cores (compute capability >= 8.9: Ada, Hopper, Blackwell);
- emulation everywhere else: quantise to the FP8 dtype, dequantise, fp32 matmul. Same rounding of the inputs as
  the hardware (the products and fp32 accumulation are exact to fp32), so the recipe's numerics can be studied
  and tested on a CPU.

Layering (house kernel style): `quantize` / `dequantize` -> `fp8_matmul` (real) / `fp8_matmul_ref` (emulated)
-> `_FP8LinearFn` (autograd) -> `FP8Linear` (module) -> `convert_to_fp8(model, ...)`.
"""

from __future__ import annotations

from typing import Final, Literal

import torch
import torch.nn.functional as F
from torch import nn

Format = Literal["e4m3", "e5m2"]

FP8_DTYPE: Final[dict[str, torch.dtype]] = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}
FP8_MAX: Final[dict[str, float]] = {"e4m3": torch.finfo(torch.float8_e4m3fn).max,  # 448
                                    "e5m2": torch.finfo(torch.float8_e5m2).max}  # 57344
# Smallest normal of each format: relative error bound 2^-(mantissa bits + 1) holds above it.
FP8_MANTISSA_BITS: Final[dict[str, int]] = {"e4m3": 3, "e5m2": 2}


# ----------------------------------------------------------------------------------------------------------------
# Quantisation


def quantize(x: torch.Tensor, fmt: Format) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor current scaling: the tensor's amax maps to the format's max.

    Args:
        x: Any shape, float.
        fmt: "e4m3" or "e5m2".

    Returns:
        q: Same shape, FP8 dtype.
        scale: 0-d fp32, with `x ~= q.float() / scale`.
    """
    fmax = FP8_MAX[fmt]
    amax = x.detach().abs().amax().float()
    # Division-by-zero guard: an all-zero tensor quantises to zeros with scale 1.
    scale = torch.where(amax > 0, fmax / amax.clamp_min(torch.finfo(torch.float32).tiny), torch.ones_like(amax))
    # fp32 before scaling: bf16 * scale would round once more before the FP8 cast.
    q = (x.float() * scale).clamp(-fmax, fmax).to(FP8_DTYPE[fmt])
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of `quantize`: (q / scale) in `dtype`."""
    return (q.float() / scale).to(dtype)


def fake_quantize(x: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Round `x` through FP8 and back (fp32): what the FP8 GEMM sees of `x`."""
    q, s = quantize(x, fmt)
    return dequantize(q, s)


# ----------------------------------------------------------------------------------------------------------------
# Matmuls: a (m, k) @ b (k, n)


def fp8_matmul_ref(qa: torch.Tensor, sa: torch.Tensor, qb: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """Emulated scaled FP8 GEMM: dequantise both operands, fp32 matmul. (m, k) @ (k, n) -> (m, n) fp32."""
    return dequantize(qa, sa) @ dequantize(qb, sb)


def fp8_matmul(qa: torch.Tensor, sa: torch.Tensor, qb: torch.Tensor, sb: torch.Tensor,
               out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Real scaled FP8 GEMM on CUDA (`torch._scaled_mm`). (m, k) @ (k, n) -> (m, n) `out_dtype`.

    cuBLASLt wants `a` row-major and `b` column-major, k and n multiples of 16, and at most one E5M2 operand; the
    scales passed are *dequantisation* factors (1 / our quantisation scale).
    """
    a = qa.contiguous()
    b = qb.t().contiguous().t()  # column-major view of the same (k, n) matrix
    return torch._scaled_mm(a, b, scale_a=sa.reciprocal().float(), scale_b=sb.reciprocal().float(),
                            out_dtype=out_dtype)


def real_fp8_supported(device: torch.device | None = None) -> bool:
    """FP8 tensor cores present: CUDA compute capability >= 8.9 and a torch with `_scaled_mm`."""
    if not torch.cuda.is_available() or not hasattr(torch, "_scaled_mm"):
        return False
    dev = device if device is not None and device.type == "cuda" else torch.device("cuda")
    return torch.cuda.get_device_capability(dev) >= (8, 9)


def _shapes_ok(*dims: int) -> bool:
    return all(d % 16 == 0 for d in dims)


# ----------------------------------------------------------------------------------------------------------------
# Autograd


class _FP8LinearFn(torch.autograd.Function):
    """y = x @ w.T (+ b) with all three GEMMs on FP8 inputs.

    Forward:  y  = Q43(x) @ Q43(w).T
    Backward: dx = Qg(dy) @ Q43(w)          dw = Qg(dy).T @ Q43(x)
    with Q43 = E4M3 and Qg = E5M2 (hybrid) or E4M3. The FP8 copies of x and w are saved for backward (half the
    activation memory of bf16), as Transformer Engine does.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, grad_fmt: str,
                real: bool) -> torch.Tensor:
        out_dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        x2 = x.reshape(-1, x.shape[-1])  # (m, k)
        qx, sx = quantize(x2, "e4m3")
        qw, sw = quantize(weight, "e4m3")  # (n, k)
        m, k = x2.shape
        n = weight.shape[0]
        use_real = real and x.is_cuda and _shapes_ok(m, k, n)
        with torch.autocast(x.device.type, enabled=False):
            if use_real:
                y = fp8_matmul(qx, sx, qw.t(), sw, out_dtype=torch.bfloat16)
            else:
                y = fp8_matmul_ref(qx, sx, qw.t(), sw)
            if bias is not None:
                y = y + bias.to(y.dtype)
        ctx.save_for_backward(qx, sx, qw, sw)
        ctx.meta = (x.shape, x.dtype, weight.dtype, bias is not None, grad_fmt, use_real)
        return y.to(out_dtype).reshape(*x.shape[:-1], n)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        qx, sx, qw, sw = ctx.saved_tensors
        x_shape, x_dtype, w_dtype, has_bias, grad_fmt, use_real = ctx.meta
        dy2 = dy.reshape(-1, dy.shape[-1])  # (m, n)
        qg, sg = quantize(dy2, grad_fmt)
        with torch.autocast(dy.device.type, enabled=False):
            if use_real:
                dx = fp8_matmul(qg, sg, qw, sw, out_dtype=torch.bfloat16)  # (m, n) @ (n, k)
                dw = fp8_matmul(qg.t(), sg, qx, sx, out_dtype=torch.float32)  # (n, m) @ (m, k)
            else:
                dx = fp8_matmul_ref(qg, sg, qw, sw)
                dw = fp8_matmul_ref(qg.t(), sg, qx, sx)
        db = dy2.float().sum(0).to(w_dtype) if has_bias else None
        return dx.to(x_dtype).reshape(x_shape), dw.to(w_dtype), db, None, None


def fp8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
               grad_fmt: Format = "e5m2", real: bool = False) -> torch.Tensor:
    """FP8 `F.linear`.

    Args:
        x: (..., in_features).
        weight: (out_features, in_features), master copy in fp32/bf16.
        bias: (out_features,) or None; added in high precision.
        grad_fmt: Format of the output gradient: "e5m2" (hybrid recipe) or "e4m3".
        real: Use `torch._scaled_mm` when the tensors are on CUDA and the shapes allow it.

    Returns:
        (..., out_features), in the autocast dtype when autocast is on, else x's dtype.
    """
    return _FP8LinearFn.apply(x, weight, bias, grad_fmt, real)


def fp8_linear_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Forward-only reference: fake-quantised E4M3 operands, fp32 `F.linear`."""
    return F.linear(fake_quantize(x, "e4m3"), fake_quantize(weight, "e4m3"), None if bias is None else bias.float())


# ----------------------------------------------------------------------------------------------------------------
# Module and model conversion


class FP8Linear(nn.Linear):
    """`nn.Linear` whose GEMMs run in FP8; same parameters and state-dict keys as the layer it replaces."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, grad_fmt: Format = "e5m2",
                 real: bool = False, device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.grad_fmt: Final[str] = grad_fmt
        self.real: Final[bool] = real

    @classmethod
    def from_linear(cls, lin: nn.Linear, *, grad_fmt: Format = "e5m2", real: bool = False) -> FP8Linear:
        new = cls(lin.in_features, lin.out_features, bias=lin.bias is not None, grad_fmt=grad_fmt, real=real,
                  device="meta")
        new.weight = lin.weight  # share the Parameter: optimizer state and checkpoints are untouched
        new.bias = lin.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp8_linear(x, self.weight, self.bias, grad_fmt=self.grad_fmt, real=self.real)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, fp8=e4m3/{self.grad_fmt}, real={self.real}"


def _blocks(model: nn.Module) -> nn.ModuleList:
    for name in ("blocks", "layers"):
        for mod in model.modules():
            lst = getattr(mod, name, None)
            if isinstance(lst, nn.ModuleList) and len(lst) > 0:
                return lst
    raise ValueError(f"{type(model).__name__} has no `blocks` / `layers` ModuleList to convert to FP8")


def convert_to_fp8(model: nn.Module, *, bf16_first: int = 4, bf16_last: int = 4, recipe: str = "hybrid",
                   emulate: bool | None = None) -> list[int]:
    """Swap the `nn.Linear`s of the inner blocks for `FP8Linear`, in place.

    Args:
        model: A model with a `blocks` (or `layers`) ModuleList; embeddings and the LM head are never converted.
        bf16_first: Leading blocks left in high precision.
        bf16_last: Trailing blocks left in high precision.
        recipe: "hybrid" (E5M2 gradients) or "e4m3" (E4M3 gradients).
        emulate: Force emulation (True) or the real path (False); None picks real FP8 when supported.

    Returns:
        Indices of the converted blocks.
    """
    if recipe not in ("hybrid", "e4m3"):
        raise ValueError(f"fp8 recipe must be 'hybrid' or 'e4m3', got {recipe!r}")
    grad_fmt: Format = "e5m2" if recipe == "hybrid" else "e4m3"
    if emulate is None:
        dev = next(model.parameters()).device
        real = dev.type == "cuda" and real_fp8_supported(dev)
    else:
        real = not emulate
        if real and not real_fp8_supported():
            raise RuntimeError("fp8.emulate=false needs a CUDA GPU with FP8 tensor cores (compute capability >= 8.9)")
    blocks = _blocks(model)
    n = len(blocks)
    converted = [i for i in range(n) if bf16_first <= i < n - bf16_last]
    for i in converted:
        for parent in blocks[i].modules():
            for cname, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, cname, FP8Linear.from_linear(child, grad_fmt=grad_fmt, real=real))
    return converted
