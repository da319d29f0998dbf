"""Memory planner: how much accelerator memory a model needs for a context length, and the inverse.

    bytes = weights + kv + ssm
    weights = n_params * bytes(dtype)
    kv      = batch * context * sum over attention blocks of 2 (K and V) * kv_heads * head_dim * bytes(dtype)
    ssm     = batch * sum over Mamba blocks of [heads * head_dim * d_state * 4      (SSM state, fp32)
                                               + conv_dim * (conv_kernel - 1) * bytes(dtype)]   (conv window)

This is the memory model behind the Nemotron-Nano-v2 design constraint (algorithms.md 3.3): the A10G budget is
22.06 GiB - 5% framework buffer - 1.3 GiB for a vision encoder = 19.66 GiB, and the 9B must serve a 128k context at
batch 1 in bf16. The SSM state is fp32 because vLLM serves these models with `--mamba_ssm_cache_dtype float32`; the
conv window holds the last `k - 1` inputs as in vLLM (our `HybridCache` keeps `k`, a few KiB more per block).
Activations and allocator slack are not modelled: the budget's 5% buffer stands for them.

Parameters are counted from an `LMConfig` block by block (every mixer kind), so the planner works for every
family; a multimodal entry adds its encoders' parameters, counted by building the model on the meta device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConfigError, ZooError
from zoo.language.config import SUPPORTED_MODEL_TYPES, LMConfig

__all__ = ["MemoryPlan", "memory_plan", "max_context", "count_parameters", "A10G_BUDGET_GIB"]

GIB = 1024**3
# A10G 22.06 GiB - 5% buffer - 1.3 GiB vision encoder (Nemotron-Nano-2 report, algorithms.md 3.3).
A10G_BUDGET_GIB = 19.66
_DTYPE_BYTES = {
    "bfloat16": 2,
    "bf16": 2,
    "float16": 2,
    "fp16": 2,
    "half": 2,
    "float32": 4,
    "fp32": 4,
    "float": 4,
    "float8": 1,
    "fp8": 1,
    "float8_e4m3fn": 1,
}


@dataclass(frozen=True)
class MemoryPlan:
    """Memory needed to serve a model.

    Attributes:
        weights_bytes: all parameters in the serving dtype.
        kv_bytes: attention K/V for `context` tokens of `batch` sequences.
        ssm_bytes: Mamba SSM state (fp32) plus conv window, for `batch` sequences; independent of context.
        total_bytes: the sum.
        params: parameter count.
        context: tokens per sequence planned for.
        batch: sequences planned for.
        dtype: serving dtype of weights and K/V.
    """

    weights_bytes: int
    kv_bytes: int
    ssm_bytes: int
    total_bytes: int
    params: int = 0
    context: int = 0
    batch: int = 1
    dtype: str = "bfloat16"

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def fits(self, budget_gib: float) -> bool:
        """Whether the plan fits in `budget_gib` GiB."""
        return self.total_bytes <= budget_gib * GIB

    def lines(self) -> list[str]:
        """Human-readable summary, one item per line (used by `zoo info`)."""
        return [
            f"weights  {self.weights_bytes / GIB:8.2f} GiB  ({self.params / 1e9:.2f}B params, {self.dtype})",
            f"kv cache {self.kv_bytes / GIB:8.2f} GiB  ({self.context} tokens x batch {self.batch})",
            f"mamba    {self.ssm_bytes / GIB:8.2f} GiB  (SSM state fp32 + conv window)",
            f"total    {self.total_gib:8.2f} GiB",
        ]


def _dtype_bytes(dtype: str | torch.dtype) -> tuple[str, int]:
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPE_BYTES:
        raise ZooError(f"memory plan: unknown dtype {dtype!r}; use one of bfloat16, float16, float32, fp8")
    return name, _DTYPE_BYTES[name]


# ---------------------------------------------------------------------------------------------- counting
def count_parameters(cfg: LMConfig) -> int:
    """Parameters of a `LanguageModel` built from `cfg`, counted from the config alone.

    Per block: its pre-norm (hidden) plus the mixer:
    mamba: in_proj hidden x (2 d_inner + 2 groups d_state + heads), conv (conv_dim x k [+ bias]), dt_bias, A_log, D
    (heads each), gated norm (d_inner), out_proj d_inner x hidden; attention: q, k, v, o (+ q/k/v biases);
    mlp: up + down (relu2) or gate + up + down (SwiGLU); linear: hidden x hidden.
    """
    h = cfg.hidden_size
    n = cfg.vocab_size * h * (1 if cfg.tie_word_embeddings else 2) + h  # embeddings, lm_head, final norm
    for block in cfg.blocks:
        n += h
        if block.mixer == "mamba":
            heads, d_inner, conv_dim = cfg.mamba_num_heads, cfg.d_inner, cfg.conv_dim
            n += h * (d_inner + conv_dim + heads)
            n += conv_dim * cfg.conv_kernel + (conv_dim if cfg.use_conv_bias else 0)
            n += 3 * heads + d_inner + d_inner * h
        elif block.mixer == "attention":
            q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.block_kv_heads(block) * cfg.head_dim
            n += h * q + 2 * h * kv + q * h + ((q + 2 * kv) if cfg.attention_bias else 0)
        elif block.mixer == "mlp":
            n += (2 if cfg.mlp_activation == "relu2" else 3) * h * cfg.block_intermediate(block)
        elif block.mixer == "linear":
            n += h * h
        else:  # a new mixer kind must be taught to the planner, not silently counted as zero
            raise ConfigError(f"memory plan: unknown mixer {block.mixer!r}")
    return n


def _kv_bytes_per_token(cfg: LMConfig, nbytes: int) -> int:
    return sum(2 * cfg.block_kv_heads(b) * cfg.head_dim * nbytes for b in cfg.blocks if b.mixer == "attention")


def _ssm_bytes_per_sequence(cfg: LMConfig, nbytes: int) -> int:
    per_block = cfg.mamba_num_heads * cfg.mamba_head_dim * cfg.ssm_state_size * 4
    per_block += cfg.conv_dim * (cfg.conv_kernel - 1) * nbytes
    return per_block * sum(1 for b in cfg.blocks if b.mixer == "mamba")


# ---------------------------------------------------------------------------------------------- resolving
def _resolve(name_or_config: str | Path | dict[str, Any] | LMConfig) -> tuple[LMConfig, int]:
    """(language-model config, total parameter count including any modality encoders)."""
    if isinstance(name_or_config, LMConfig):
        return name_or_config, count_parameters(name_or_config)
    if isinstance(name_or_config, (str, Path)):
        path = Path(name_or_config)
        if (path / "config.json").is_file():
            try:
                hf = json.loads((path / "config.json").read_text())
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path / 'config.json'}: not valid JSON ({e})") from None
        else:
            from zoo.registry import get_entry

            hf = get_entry(str(name_or_config)).config
    elif isinstance(name_or_config, dict):
        hf = name_or_config
    else:
        raise ZooError(
            f"memory plan: expected a name, a checkpoint directory, a config dict or an LMConfig, got "
            f"{type(name_or_config).__name__}"
        )
    if hf.get("model_type") in SUPPORTED_MODEL_TYPES:
        cfg = LMConfig.from_hf(hf)
        return cfg, count_parameters(cfg)
    text = hf.get("text_config") or hf.get("llm_config")
    if not isinstance(text, dict):
        raise ConfigError(
            f"memory plan: model_type {hf.get('model_type')!r} is neither a language model nor has a text_config"
        )
    cfg = LMConfig.from_hf(text)
    return cfg, _multimodal_params(hf)


def _multimodal_params(hf: dict[str, Any]) -> int:
    # Encoders and projectors have their own configs; building the model on the meta device counts them exactly
    # without allocating memory.
    from zoo.registry import architecture_class

    with torch.device("meta"):
        model = architecture_class(hf.get("model_type")).from_hf_config(hf)
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- public API
def memory_plan(
    name_or_config: str | Path | dict[str, Any] | LMConfig,
    context: int,
    batch: int = 1,
    dtype: str | torch.dtype = "bfloat16",
) -> MemoryPlan:
    """Memory to serve `batch` sequences of `context` tokens.

    Args:
        name_or_config: a registry name, a checkpoint directory, an upstream config.json dict, or an `LMConfig`.
        context: tokens per sequence (prompt + generated).
        batch: sequences decoded together.
        dtype: weights and K/V dtype (the SSM state is always fp32).

    Returns:
        The `MemoryPlan`.
    """
    if context < 0 or batch < 1:
        raise ZooError(f"memory plan: need context >= 0 and batch >= 1, got context={context}, batch={batch}")
    cfg, params = _resolve(name_or_config)
    return _plan(cfg, params, context, batch, dtype)


def _plan(cfg: LMConfig, params: int, context: int, batch: int, dtype: str | torch.dtype) -> MemoryPlan:
    dtype_name, nbytes = _dtype_bytes(dtype)
    weights = params * nbytes
    kv = batch * context * _kv_bytes_per_token(cfg, nbytes)
    ssm = batch * _ssm_bytes_per_sequence(cfg, nbytes)
    return MemoryPlan(
        weights, kv, ssm, weights + kv + ssm, params=params, context=context, batch=batch, dtype=dtype_name
    )


def max_context(
    name_or_config: str | Path | dict[str, Any] | LMConfig,
    budget_gib: float,
    batch: int = 1,
    dtype: str | torch.dtype = "bfloat16",
) -> int:
    """Longest context whose `memory_plan` fits in `budget_gib` GiB (0 when even the weights do not fit).

    The answer is capped at the model's `max_position_embeddings` (beyond it the model was not trained), which is
    also the answer for a model without attention, whose memory does not grow with context.
    """
    if batch < 1:
        raise ZooError(f"max_context: need batch >= 1, got {batch}")
    _, nbytes = _dtype_bytes(dtype)
    cfg, params = _resolve(name_or_config)
    fixed = _plan(cfg, params, 0, batch, dtype)
    room = int(budget_gib * GIB) - fixed.total_bytes
    if room < 0:
        return 0
    per_token = batch * _kv_bytes_per_token(cfg, nbytes)
    if per_token == 0:
        return cfg.max_position_embeddings
    return min(room // per_token, cfg.max_position_embeddings)
