"""Kernel dispatch: which implementation of each op runs, decided once and overridable.

Ops are ``"ssd"`` (Mamba-2 scan and step, from ``mamba_ssm``), ``"conv"`` (causal depthwise conv1d, from
``causal_conv1d``) and ``"attention"`` (from ``flash_attn``). Each has two backends:

* ``"torch"``: the plain-torch implementation in this package; runs on every device; the reference.
* ``"cuda"``: the optional CUDA package (extra ``cuda``), used only for CUDA tensors.

The default, ``"auto"``, picks ``"cuda"`` for CUDA tensors when the package imports, else ``"torch"``. Whether a
package imports is probed once per process (:func:`available`), never at import time of this module, and a failed
probe is remembered: a missing optional dependency falls back silently under ``"auto"`` and raises a clear
:class:`KernelUnavailableError` when ``"cuda"`` is forced.

Forcing, for tests and benchmarks::

    with force_backend("torch"):            # every op
        ...
    with force_backend("torch", ops=("attention",)):  # one op
        ...
    set_backend("torch")                    # process-wide, until set_backend("auto")
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from torch import Tensor

__all__ = [
    "OPS", "Backend", "KernelUnavailableError", "Availability", "available", "load", "backend", "use_cuda_kernel",
    "set_backend", "force_backend",
]

Backend = Literal["auto", "torch", "cuda"]
OPS: tuple[str, ...] = ("ssd", "conv", "attention")

# op -> (module to import, names it must provide); the import is what "installed" means.
_PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mamba_ssm": ("mamba_ssm.ops.triton", ()),
    "causal_conv1d": ("causal_conv1d", ("causal_conv1d_fn", "causal_conv1d_update")),
    "flash_attn": ("flash_attn", ("flash_attn_func",)),
}
_OP_PACKAGE = {"ssd": "mamba_ssm", "conv": "causal_conv1d", "attention": "flash_attn"}


class KernelUnavailableError(RuntimeError):
    """The CUDA backend of an op was forced but its package (or CUDA) is not available."""


@dataclass(frozen=True)
class Availability:
    """Which optional CUDA kernel packages import in this process (probed once)."""

    mamba_ssm: bool
    causal_conv1d: bool
    flash_attn: bool
    cuda: bool


# ---------------------------------------------------------------------------------------------------------------
# Probing optional packages (once)
# ---------------------------------------------------------------------------------------------------------------


class _MambaSSM:
    """The two entry points we use from mamba_ssm, imported from their defining modules."""

    def __init__(self) -> None:
        combined = importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
        state_update = importlib.import_module("mamba_ssm.ops.triton.selective_state_update")
        self.mamba_chunk_scan_combined = combined.mamba_chunk_scan_combined
        self.selective_state_update = state_update.selective_state_update


@functools.cache
def _try_load(package: str) -> ModuleType | _MambaSSM | None:
    try:
        if package == "mamba_ssm":
            return _MambaSSM()
        module_name, names = _PACKAGES[package]
        module = importlib.import_module(module_name)
        for name in names:
            getattr(module, name)
        return module
    except Exception:  # ImportError, but also a broken CUDA build raising at import (OSError, RuntimeError)
        return None


@functools.cache
def available() -> Availability:
    """Probe the optional packages once (importing them can take seconds) and remember the answer."""
    import torch

    cuda = torch.cuda.is_available()
    # Without CUDA the packages are useless: do not even import them (their import may itself need CUDA).
    return Availability(
        mamba_ssm=cuda and _try_load("mamba_ssm") is not None,
        causal_conv1d=cuda and _try_load("causal_conv1d") is not None,
        flash_attn=cuda and _try_load("flash_attn") is not None,
        cuda=cuda,
    )


def load(package: str) -> ModuleType | _MambaSSM:
    """The imported optional package; raises :class:`KernelUnavailableError` when it is not available."""
    module = _try_load(package) if available().cuda else None
    if module is None:
        raise KernelUnavailableError(
            f"the CUDA kernels of '{package}' are not available (needs CUDA and `pip install nemotron-zoo[cuda]`)"
        )
    return module


# ---------------------------------------------------------------------------------------------------------------
# Choosing a backend
# ---------------------------------------------------------------------------------------------------------------

_global: dict[str, Backend] = dict.fromkeys(OPS, "auto")
_local = threading.local()  # per-thread stack of overrides from force_backend


def _check(name: str, ops: Iterable[str]) -> tuple[str, ...]:
    if name not in ("auto", "torch", "cuda"):
        raise ValueError(f"unknown kernel backend {name!r}; expected 'auto', 'torch' or 'cuda'")
    ops = tuple(ops)
    for op in ops:
        if op not in OPS:
            raise ValueError(f"unknown kernel op {op!r}; expected one of {OPS}")
    return ops


def backend(op: str) -> Backend:
    """The backend currently requested for ``op`` (innermost :func:`force_backend`, else :func:`set_backend`)."""
    for overrides in reversed(getattr(_local, "stack", [])):
        if op in overrides:
            return overrides[op]
    return _global[op]


def set_backend(name: Backend, ops: Iterable[str] = OPS) -> None:
    """Set the process-wide backend of ``ops`` ("auto" restores automatic choice)."""
    for op in _check(name, ops):
        _global[op] = name


@contextlib.contextmanager
def force_backend(name: Backend, ops: Iterable[str] = OPS) -> Iterator[None]:
    """Within the block, run ``ops`` on backend ``name`` (thread-local; nests)."""
    ops = _check(name, ops)
    if name == "cuda":
        for op in ops:
            load(_OP_PACKAGE[op])  # fail here, clearly, rather than deep inside a model
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(dict.fromkeys(ops, name))
    try:
        yield
    finally:
        stack.pop()


def use_cuda_kernel(op: str, x: Tensor) -> bool:
    """Whether ``op`` on tensor ``x`` should run the optional CUDA kernel.

    Under "auto": only for CUDA tensors with the package available. Under "cuda": for CUDA tensors (a CPU tensor
    still runs torch, since the kernels cannot take it), raising if the package is missing. Under "torch": never.
    """
    choice = backend(op)
    if choice == "torch" or not x.is_cuda:
        return False
    package = _OP_PACKAGE[op]
    if choice == "cuda":
        load(package)
        return True
    return bool(getattr(available(), package))
