"""The model pairs the benchmarks compare: a transformers NemotronH and the same weights loaded by zoo.

Sizes are chosen for a 2-core CPU: ~29M parameters with Nano-v2's layer mix and head shapes scaled down (Mamba heads
of dim 64 with 2 groups, GQA attention with head dim 64, squared-ReLU MLPs, no positional encoding).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

# The Nano-v2 pattern in miniature: mostly Mamba + MLP pairs, attention in 2 of 16 blocks (Nano-9B-v2: 4 of 56).
HYBRID: dict[str, Any] = {
    "vocab_size": 4096, "hidden_size": 512, "hybrid_override_pattern": "M-M-M*-M-M-M*-M-",
    "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 1536,
    "mamba_num_heads": 16, "mamba_head_dim": 64, "ssm_state_size": 64, "n_groups": 2, "conv_kernel": 4,
    "chunk_size": 128, "max_position_embeddings": 16384,
}


# A smaller sibling (~7M parameters) where per-step overhead, not weight bandwidth, dominates decode.
SMALL: dict[str, Any] = {"hidden_size": 256, "intermediate_size": 768, "mamba_num_heads": 8, "num_attention_heads": 4,
                         "num_key_value_heads": 2}


def build_pair(overrides: dict[str, Any] | None = None, *, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformers model, zoo model) with identical weights, fp32, eval mode.

    The transformers model is built with random init, saved with ``save_pretrained`` and loaded back by
    ``zoo.loading.load_directory``: the user's path, so the comparison covers the real key map and loader.
    """
    import transformers
    from transformers import NemotronHConfig, NemotronHForCausalLM

    from zoo.loading import load_directory

    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    config = NemotronHConfig(**(HYBRID | (overrides or {})))
    hf = NemotronHForCausalLM(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(Path(tmp), progress_bar=False) if _takes_progress(hf) else hf.save_pretrained(Path(tmp))
        ours = load_directory(Path(tmp), dtype=torch.float32).eval()
    return hf, ours


def _takes_progress(model: torch.nn.Module) -> bool:
    import inspect

    return "progress_bar" in inspect.signature(model.save_pretrained).parameters


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
