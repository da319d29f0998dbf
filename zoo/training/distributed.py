"""FSDP2 scale-out: process-group set-up under `torchrun` and per-block `fully_shard`.

Launch: `torchrun --nproc-per-node N -m zoo.cli train ENTRY STAGE` (or any script calling these functions). With
world size 1 everything here is a no-op, so recipes call it unconditionally.

Design choices:
- Each backbone block is its own FSDP unit (parameters gathered just before the block runs, freed after), then the
  root module takes the embeddings, final norm and LM head: the usual FSDP2 wrapping for a decoder.
- Backend: NCCL on CUDA, gloo on CPU (tests run 2 CPU ranks with gloo).
- Data parallelism is by rows of one global batch (`data.shard_batch`), so N ranks see exactly the batch one
  process sees, and `loop.train_step` normalises by the global token count: same losses as one process.
"""

from __future__ import annotations

import os

import torch
from torch import nn


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str = "cpu") -> tuple[int, int]:
    """Initialise the default process group when launched by torchrun; return (rank, world size)."""
    if world_size() <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def shard(model: nn.Module, *, reshard_after_forward: bool = True) -> nn.Module:
    """Apply FSDP2 `fully_shard` per block, then to the root; a no-op without a multi-rank process group.

    Args:
        model: A model with a `blocks` ModuleList (the zoo backbone).
        reshard_after_forward: True frees gathered parameters after each block's forward (less memory, one more
            all-gather in backward); False keeps them until backward.

    Returns:
        The same module, now holding DTensor shards.
    """
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return model
    from torch.distributed.fsdp import fully_shard

    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ValueError(f"{type(model).__name__} has no `blocks` to shard")
    for block in blocks:
        fully_shard(block, reshard_after_forward=reshard_after_forward)
    fully_shard(model, reshard_after_forward=reshard_after_forward)
    return model


def teardown() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
