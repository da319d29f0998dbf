"""Atomic training checkpoints: model, optimizer, data sampler, loop counters and RNG.

Layout of one checkpoint (`OUT/checkpoints/step_00000120/`):

    model.safetensors     our parameter names (not the upstream HF names: a resume checkpoint, not an export)
    optimizer.pt          AdamW state, read back with `torch.load(weights_only=True)` (tensors and numbers only)
    rng.safetensors       torch CPU (and CUDA) generator states
    state.json            step, tokens, the data sampler state, anything else the recipe adds

It is written into a temporary sibling directory and renamed into place, so a kill mid-save leaves either the
previous checkpoint or the new one, never half of one. Under FSDP2 every rank joins the gather of full
(unsharded) state dicts and rank 0 writes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.errors import CheckpointError

_PREFIX = "step_"


def _is_sharded(model: nn.Module) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full, unsharded CPU state dict (collective under FSDP2: call on every rank)."""
    if _is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _optim_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    if _is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def rng_state() -> dict[str, torch.Tensor]:
    out = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"torch_cuda_{i}"] = s
    return out


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [state[k] for k in sorted(state) if k.startswith("torch_cuda_")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(out_dir: str | Path, step: int, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    data_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    keep: int = 2) -> Path:
    """Write checkpoint `step` under `out_dir/checkpoints/` atomically and prune to the newest `keep`.

    Args:
        out_dir: The run directory.
        step: Optimizer steps completed.
        model: The model (plain or FSDP2-sharded).
        optimizer: Its optimizer, or None (e.g. a frozen teacher).
        data_state: JSON-serialisable sampler/loader state.
        extra: JSON-serialisable loop counters (tokens, metrics) to restore.
        keep: Checkpoints to keep; 0 keeps all.

    Returns:
        The checkpoint directory.
    """
    root = Path(out_dir) / "checkpoints"
    final = root / f"{_PREFIX}{step:08d}"
    msd = model_state(model)
    osd = _optim_state(model, optimizer) if optimizer is not None else None
    if _rank() == 0:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        # clone: tied weights share storage, which safetensors refuses to write twice.
        save_file({k: v.contiguous().clone() for k, v in msd.items()}, str(tmp / "model.safetensors"))
        if osd is not None:
            torch.save(osd, tmp / "optimizer.pt")
        save_file(rng_state(), str(tmp / "rng.safetensors"))
        state = {"step": step, "data": data_state, "extra": extra or {}, "python_random": _py_rng()}
        (tmp / "state.json").write_text(json.dumps(state))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep > 0:
            for old in list_checkpoints(out_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def _py_rng() -> list:
    v, s, g = random.getstate()
    return [v, list(s), g]


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are ignored)."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    c = list_checkpoints(out_dir)
    return c[-1] if c else None


def load_checkpoint(path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    ) -> dict[str, Any]:
    """Restore model, optimizer and RNG from a checkpoint directory; return its state.json contents.

    The caller restores its sampler from `state["data"]` and its counters from `state["extra"]`.

    Raises:
        CheckpointError: naming the file when a piece is missing or does not fit the model.
    """
    path = Path(path)
    for name in ("model.safetensors", "state.json", "rng.safetensors"):
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing from checkpoint")
    sd = load_file(str(path / "model.safetensors"))
    if _is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, sd, options=StateDictOptions(full_state_dict=True))
    else:
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{path / 'model.safetensors'}: keys do not match the model "
                                  f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    if optimizer is not None:
        if not (path / "optimizer.pt").is_file():
            raise CheckpointError(f"{path / 'optimizer.pt'}: missing from checkpoint")
        osd = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        if _is_sharded(model):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, optimizer, osd, options=StateDictOptions(full_state_dict=True))
        else:
            optimizer.load_state_dict(osd)
    set_rng_state(load_file(str(path / "rng.safetensors")))
    state = json.loads((path / "state.json").read_text())
    v, s, g = state.get("python_random", _py_rng())
    random.setstate((v, tuple(s), g))
    return state
