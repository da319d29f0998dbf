"""LMConfig: one config for every language model in the zoo, and its translation to and from upstream config.json.

A model is global dimensions plus a tuple of `BlockSpec`s; each block is `x = x + mixer(norm(x))`. Families map
onto this as follows (see DESIGN.md, "The shared backbone"):

* nemotron_h (Nemotron-H, Nano-v2): one block per pattern character: `M` mamba, `*` attention (NoPE), `-` relu2 MLP.
* llama / qwen2: each decoder layer is two blocks, attention (its `input_layernorm`) then SwiGLU mlp
  (its `post_attention_layernorm`). Qwen2 has q/k/v biases.
* nemotron-nas (DeciLM: Llama-Nemotron Super/Ultra): per-layer variants; no-op sub-blocks vanish,
  `replace_with_linear` becomes a `linear` mixer, FFN width and kv heads vary per block.

`from_hf` never guesses from names: it dispatches on `model_type`, and raises `ConfigError` naming the field.
`to_hf` writes the upstream schema so transformers / vLLM can load what we save. Upstream-only fields we do not
model are preserved by the loader (`ZooModel.hf_config`), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from zoo.errors import ConfigError

MixerKind = Literal["mamba", "attention", "mlp", "linear"]
PATTERN_TO_MIXER: dict[str, MixerKind] = {"M": "mamba", "*": "attention", "-": "mlp"}
MIXER_TO_PATTERN = {v: k for k, v in PATTERN_TO_MIXER.items()}
# transformers >= 5 names for nemotron_h layer types, and the legacy names of NVIDIA's remote code.
HF_LAYER_TYPES = {"linear_attention": "mamba", "full_attention": "attention", "mlp": "mlp",
                  "mamba": "mamba", "attention": "attention"}
SUPPORTED_MODEL_TYPES = ("nemotron_h", "llama", "qwen2", "nemotron-nas")


@dataclass(frozen=True)
class BlockSpec:
    """One residual block.

    Attributes:
        mixer: which mixer the block runs after its pre-norm.
        intermediate_size: MLP width for this block (None: the config's `intermediate_size`).
        num_key_value_heads: kv heads for this attention block (None: the config's value).
        layer: index of the upstream decoder layer the block came from (llama-style families have two blocks per
            layer; nemotron_h has one). Used by key maps.
        role: "attn" or "ffn" half of an upstream layer (llama-style); "" for nemotron_h.
    """

    mixer: MixerKind
    intermediate_size: int | None = None
    num_key_value_heads: int | None = None
    layer: int = 0
    role: str = ""


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding settings. `scaling` is the upstream `rope_scaling` dict (only `llama3` is implemented)."""

    theta: float = 10000.0
    scaling: dict | None = None


@dataclass(frozen=True)
class LMConfig:
    """Global dimensions of a language model plus its blocks. Frozen: derive new configs with `dataclasses.replace`."""

    family: str
    vocab_size: int
    hidden_size: int
    blocks: tuple[BlockSpec, ...]
    # attention
    num_attention_heads: int = 0
    num_key_value_heads: int = 0
    head_dim: int = 0
    attention_bias: bool = False  # q/k/v bias (Qwen2); o_proj never has one in these families
    rope: RopeConfig | None = None  # None = NoPE (Nemotron-H)
    max_position_embeddings: int = 4096
    # mlp
    intermediate_size: int = 0
    mlp_activation: Literal["relu2", "swiglu"] = "swiglu"
    # mamba-2
    mamba_num_heads: int = 0
    mamba_head_dim: int = 0
    ssm_state_size: int = 0
    n_groups: int = 1
    conv_kernel: int = 4
    chunk_size: int = 128
    use_conv_bias: bool = True
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_floor: float = 1e-4
    # dt semantics follow the CUDA kernels (no clamp). Set to time_step_min to match transformers' prefill path.
    dt_clamp_min: float | None = None
    # shared
    norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    initializer_range: float = 0.02
    # DeciLM: upstream layer count (a layer whose attention and FFN are both no-ops has no block).
    num_upstream_layers: int | None = None

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ConfigError("LMConfig: a model needs at least one block")
        kinds = {b.mixer for b in self.blocks}
        if "attention" in kinds:
            if self.num_attention_heads <= 0 or self.head_dim <= 0:
                raise ConfigError("LMConfig: attention blocks need num_attention_heads and head_dim > 0")
            for b in self.blocks:
                kv = b.num_key_value_heads or self.num_key_value_heads
                if b.mixer == "attention" and (kv <= 0 or self.num_attention_heads % kv):
                    raise ConfigError(f"LMConfig: num_attention_heads={self.num_attention_heads} is not a multiple "
                                      f"of num_key_value_heads={kv} (block of layer {b.layer})")
        if "mamba" in kinds:
            if min(self.mamba_num_heads, self.mamba_head_dim, self.ssm_state_size, self.n_groups) <= 0:
                raise ConfigError("LMConfig: mamba blocks need mamba_num_heads, mamba_head_dim, ssm_state_size, "
                                  "n_groups > 0")
            if self.mamba_num_heads % self.n_groups:
                raise ConfigError(f"LMConfig: mamba_num_heads={self.mamba_num_heads} must be divisible by "
                                  f"n_groups={self.n_groups}")
        if "mlp" in kinds and any(self.block_intermediate(b) <= 0 for b in self.blocks if b.mixer == "mlp"):
            raise ConfigError("LMConfig: mlp blocks need intermediate_size > 0")

    # ------------------------------------------------------------------ derived sizes
    @property
    def d_inner(self) -> int:
        """Mamba inner width = heads * head_dim (`expand` is unused upstream)."""
        return self.mamba_num_heads * self.mamba_head_dim

    @property
    def conv_dim(self) -> int:
        """Channels through the Mamba conv: x plus B and C of every group."""
        return self.d_inner + 2 * self.n_groups * self.ssm_state_size

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def block_intermediate(self, block: BlockSpec) -> int:
        return block.intermediate_size if block.intermediate_size is not None else self.intermediate_size

    def block_kv_heads(self, block: BlockSpec) -> int:
        return block.num_key_value_heads if block.num_key_value_heads is not None else self.num_key_value_heads

    @property
    def pattern(self) -> str:
        """Nemotron-H pattern string (`M`, `*`, `-`; `L` for linear blocks)."""
        return "".join(MIXER_TO_PATTERN.get(b.mixer, "L") for b in self.blocks)

    @property
    def eos_token_ids(self) -> list[int]:
        if self.eos_token_id is None:
            return []
        return list(self.eos_token_id) if isinstance(self.eos_token_id, (list, tuple)) else [self.eos_token_id]

    # ------------------------------------------------------------------ upstream translation
    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> LMConfig:
        """Build from an upstream config.json dict; dispatch on `model_type`."""
        model_type = hf.get("model_type")
        if model_type == "nemotron_h":
            return _nemotron_h_from_hf(hf)
        if model_type in ("llama", "qwen2"):
            return _llama_from_hf(hf, model_type)
        if model_type == "nemotron-nas":
            return _decilm_from_hf(hf)
        raise ConfigError(f"unknown model_type {model_type!r} for a language model; supported: "
                          f"{', '.join(SUPPORTED_MODEL_TYPES)}")

    def to_hf(self) -> dict[str, Any]:
        """Upstream config.json dict for this config's family."""
        if self.family == "nemotron_h":
            return _nemotron_h_to_hf(self)
        if self.family in ("llama", "qwen2"):
            return _llama_to_hf(self)
        if self.family == "nemotron-nas":
            return _decilm_to_hf(self)
        raise ConfigError(f"cannot write config.json for family {self.family!r}")

    def with_overrides(self, **kw: Any) -> LMConfig:
        return replace(self, **kw)


# ---------------------------------------------------------------------- helpers
def _req(hf: dict, key: str, *alts: str) -> Any:
    for k in (key, *alts):
        if k in hf and hf[k] is not None:
            return hf[k]
    raise ConfigError(f"config.json: missing required field {key!r} (model_type {hf.get('model_type')!r})")


def _get(hf: dict, key: str, default: Any, *alts: str) -> Any:
    for k in (key, *alts):
        if k in hf and hf[k] is not None:
            return hf[k]
    return default


def _token_fields(hf: dict) -> dict[str, Any]:
    """Fields every family reads the same way: special token ids, tying, init scale."""
    return {"tie_word_embeddings": bool(_get(hf, "tie_word_embeddings", False)),
            "pad_token_id": hf.get("pad_token_id"), "bos_token_id": hf.get("bos_token_id"),
            "eos_token_id": hf.get("eos_token_id"),
            "initializer_range": float(_get(hf, "initializer_range", 0.02))}


def _token_fields_to_hf(c: LMConfig) -> dict[str, Any]:
    return {"tie_word_embeddings": c.tie_word_embeddings, "pad_token_id": c.pad_token_id,
            "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
            "initializer_range": c.initializer_range}


def _rope_from_hf(hf: dict) -> RopeConfig:
    # transformers 5 nests theta inside rope_parameters; 4.x and hub files use rope_theta + rope_scaling.
    params = hf.get("rope_parameters") or {}
    theta = float(_get(hf, "rope_theta", params.get("rope_theta", 10000.0)))
    scaling = hf.get("rope_scaling") or None
    if scaling is None and params.get("rope_type") not in (None, "default"):
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if scaling is not None:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind in (None, "default"):
            scaling = None
        elif kind != "llama3":
            raise ConfigError(f"config.json: rope_scaling type {kind!r} is not supported (only 'llama3')")
    return RopeConfig(theta=theta, scaling=scaling)


# ---------------------------------------------------------------------- nemotron_h
def _nemotron_h_from_hf(hf: dict) -> LMConfig:
    if hf.get("layers_block_type") or hf.get("layer_types"):
        types = hf.get("layers_block_type") or hf.get("layer_types")
        try:
            kinds = [HF_LAYER_TYPES[t] for t in types]
        except KeyError as e:
            raise ConfigError(f"config.json: unsupported nemotron_h layer type {e.args[0]!r} "
                              f"(supported: {sorted(HF_LAYER_TYPES)}; MoE is not implemented)") from None
    elif hf.get("hybrid_override_pattern"):
        pattern = hf["hybrid_override_pattern"]
        bad = sorted(set(pattern) - set(PATTERN_TO_MIXER))
        if bad:
            raise ConfigError(f"config.json: hybrid_override_pattern has unsupported characters {bad} "
                              "(supported: M, *, -; MoE 'E' is not implemented)")
        kinds = [PATTERN_TO_MIXER[c] for c in pattern]
    else:
        raise ConfigError("config.json: nemotron_h needs `hybrid_override_pattern` or `layers_block_type`")
    blocks = tuple(BlockSpec(mixer=k, layer=i) for i, k in enumerate(kinds))
    heads = int(_get(hf, "num_attention_heads", 32))
    hidden = int(_req(hf, "hidden_size"))
    return LMConfig(
        family="nemotron_h",
        vocab_size=int(_req(hf, "vocab_size")),
        hidden_size=hidden,
        blocks=blocks,
        num_attention_heads=heads,
        num_key_value_heads=int(_get(hf, "num_key_value_heads", heads)),
        head_dim=int(_get(hf, "head_dim", hidden // heads, "attention_head_dim")),
        attention_bias=bool(_get(hf, "attention_bias", False)),
        rope=None,  # Nemotron-H is NoPE (checkpoints.md 0.1)
        max_position_embeddings=int(_get(hf, "max_position_embeddings", 4096)),
        intermediate_size=int(_get(hf, "intermediate_size", 0)),
        mlp_activation="relu2",
        mamba_num_heads=int(_get(hf, "mamba_num_heads", 128)),
        mamba_head_dim=int(_get(hf, "mamba_head_dim", 64)),
        ssm_state_size=int(_get(hf, "ssm_state_size", 128)),
        n_groups=int(_get(hf, "n_groups", 8, "mamba_n_groups")),
        conv_kernel=int(_get(hf, "conv_kernel", 4, "mamba_d_conv")),
        chunk_size=int(_get(hf, "chunk_size", 128, "mamba_chunk_size")),
        use_conv_bias=bool(_get(hf, "use_conv_bias", True, "mamba_conv_bias")),
        time_step_min=float(_get(hf, "time_step_min", 0.001, "mamba_dt_min")),
        time_step_max=float(_get(hf, "time_step_max", 0.1, "mamba_dt_max")),
        time_step_floor=float(_get(hf, "time_step_floor", 1e-4, "mamba_dt_init_floor")),
        dt_clamp_min=hf.get("zoo_dt_clamp_min"),
        norm_eps=float(_get(hf, "layer_norm_epsilon", 1e-5, "rms_norm_eps")),
        **_token_fields(hf),
    )


def _nemotron_h_to_hf(c: LMConfig) -> dict:
    if any(b.mixer == "linear" for b in c.blocks):
        raise ConfigError("nemotron_h has no `linear` block type; save this model as nemotron-nas instead")
    out = {
        "architectures": ["NemotronHForCausalLM"],
        "model_type": "nemotron_h",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "hybrid_override_pattern": c.pattern,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "attention_bias": c.attention_bias,
        "max_position_embeddings": c.max_position_embeddings,
        "intermediate_size": c.intermediate_size,
        "mlp_hidden_act": "relu2",
        "mlp_bias": False,
        "use_bias": False,
        "mamba_num_heads": c.mamba_num_heads,
        "mamba_head_dim": c.mamba_head_dim,
        "ssm_state_size": c.ssm_state_size,
        "n_groups": c.n_groups,
        "conv_kernel": c.conv_kernel,
        "chunk_size": c.chunk_size,
        "use_conv_bias": c.use_conv_bias,
        "time_step_min": c.time_step_min,
        "time_step_max": c.time_step_max,
        "time_step_floor": c.time_step_floor,
        "time_step_limit": [0.0, float("inf")] if c.dt_clamp_min is None else [c.dt_clamp_min, float("inf")],
        "layer_norm_epsilon": c.norm_eps,
        **_token_fields_to_hf(c),
        "residual_in_fp32": False,
        "use_cache": True,
        "torch_dtype": "bfloat16",
    }
    if c.dt_clamp_min is not None:
        out["zoo_dt_clamp_min"] = c.dt_clamp_min
    return out


# ---------------------------------------------------------------------- llama / qwen2
def _llama_from_hf(hf: dict, model_type: str) -> LMConfig:
    n_layers = int(_req(hf, "num_hidden_layers"))
    blocks: list[BlockSpec] = []
    for i in range(n_layers):
        blocks.append(BlockSpec("attention", layer=i, role="attn"))
        blocks.append(BlockSpec("mlp", layer=i, role="ffn"))
    hidden = int(_req(hf, "hidden_size"))
    heads = int(_req(hf, "num_attention_heads"))
    act = _get(hf, "hidden_act", "silu")
    if act != "silu":
        raise ConfigError(f"config.json: hidden_act {act!r} is not supported for {model_type} (only 'silu')")
    if model_type == "llama" and (hf.get("attention_bias") or hf.get("mlp_bias")):
        raise ConfigError("config.json: llama with attention_bias/mlp_bias is not supported")
    return LMConfig(
        family=model_type,
        vocab_size=int(_req(hf, "vocab_size")),
        hidden_size=hidden,
        blocks=tuple(blocks),
        num_attention_heads=heads,
        num_key_value_heads=int(_get(hf, "num_key_value_heads", heads)),
        head_dim=int(_get(hf, "head_dim", hidden // heads)),
        attention_bias=(model_type == "qwen2"),
        rope=_rope_from_hf(hf),
        max_position_embeddings=int(_get(hf, "max_position_embeddings", 4096)),
        intermediate_size=int(_req(hf, "intermediate_size")),
        mlp_activation="swiglu",
        norm_eps=float(_get(hf, "rms_norm_eps", 1e-6)),
        **_token_fields(hf),
    )


def _rope_to_hf(c: LMConfig) -> dict:
    rope = c.rope or RopeConfig()
    return {"rope_theta": rope.theta, "rope_scaling": dict(rope.scaling) if rope.scaling else None}


def _llama_to_hf(c: LMConfig) -> dict:
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[c.family]
    if any(b.mixer not in ("attention", "mlp") for b in c.blocks) or c.num_layers % 2:
        raise ConfigError(f"{c.family} needs alternating attention/mlp blocks")
    out = {
        "architectures": [arch],
        "model_type": c.family,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers // 2,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "intermediate_size": c.intermediate_size,
        "hidden_act": "silu",
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.norm_eps,
        **_token_fields_to_hf(c),
        "use_cache": True,
        "torch_dtype": "bfloat16",
        **_rope_to_hf(c),
    }
    if c.family == "llama":
        out.update(attention_bias=False, mlp_bias=False, pretraining_tp=1)
    else:
        out.update(use_sliding_window=False, sliding_window=None, max_window_layers=c.num_layers // 2)
    return out


# ---------------------------------------------------------------------- nemotron-nas (DeciLM)
def decilm_ffn_width(ffn_mult: float, hidden: int) -> int:
    """DeciLM FFN width: round_up_to_256(int(2 * ffn_mult * hidden / 3))."""
    width = int(2 * ffn_mult * hidden / 3)
    return int(math.ceil(width / 256) * 256)


def _decilm_from_hf(hf: dict) -> LMConfig:
    configs = _req(hf, "block_configs")
    hidden = int(_req(hf, "hidden_size"))
    heads = int(_req(hf, "num_attention_heads"))
    blocks: list[BlockSpec] = []
    for i, bc in enumerate(configs):
        try:
            attn, ffn = bc["attention"], bc["ffn"]
        except (KeyError, TypeError):
            raise ConfigError(f"config.json: block_configs[{i}] needs 'attention' and 'ffn' objects") from None
        for key in ("sparsify", "window_length", "num_sink_tokens"):
            if attn.get(key) or (key == "sparsify" and ffn.get(key)):
                raise ConfigError(f"config.json: block_configs[{i}] uses {key!r}, which is not supported")
        if attn.get("no_op"):
            pass
        elif attn.get("replace_with_linear"):
            blocks.append(BlockSpec("linear", layer=i, role="attn"))
        else:
            group = attn.get("n_heads_in_group")
            if not group or heads % int(group):
                raise ConfigError(f"config.json: block_configs[{i}].attention.n_heads_in_group={group!r} must "
                                  f"divide num_attention_heads={heads}")
            blocks.append(BlockSpec("attention", num_key_value_heads=heads // int(group), layer=i, role="attn"))
        if ffn.get("no_op"):
            pass
        elif ffn.get("replace_with_linear"):
            blocks.append(BlockSpec("linear", layer=i, role="ffn"))
        else:
            mult = ffn.get("ffn_mult")
            if mult is None:
                raise ConfigError(f"config.json: block_configs[{i}].ffn.ffn_mult is missing")
            blocks.append(BlockSpec("mlp", intermediate_size=decilm_ffn_width(float(mult), hidden), layer=i,
                                    role="ffn"))
    if not blocks:
        raise ConfigError("config.json: every DeciLM block is a no-op")
    kv_default = next((b.num_key_value_heads for b in blocks if b.mixer == "attention"), heads)
    inter_default = next((b.intermediate_size for b in blocks if b.mixer == "mlp"), 0)
    return _decilm_config(hf, blocks, hidden, heads, kv_default, inter_default, len(configs))


def _decilm_config(hf: dict, blocks: list[BlockSpec], hidden: int, heads: int, kv: int | None, inter: int | None,
                   n_layers: int) -> LMConfig:
    cfg = LMConfig(
        family="nemotron-nas",
        vocab_size=int(_req(hf, "vocab_size")),
        hidden_size=hidden,
        blocks=tuple(blocks),
        num_attention_heads=heads,
        num_key_value_heads=int(kv or heads),
        head_dim=int(_get(hf, "head_dim", hidden // heads)),
        rope=_rope_from_hf(hf),
        max_position_embeddings=int(_get(hf, "max_position_embeddings", 4096)),
        intermediate_size=int(inter or 0),
        mlp_activation="swiglu",
        norm_eps=float(_get(hf, "rms_norm_eps", 1e-5)),
        **_token_fields(hf),
        num_upstream_layers=n_layers,
    )
    return cfg


def _decilm_to_hf(c: LMConfig) -> dict:
    n_layers = c.num_upstream_layers or (max(b.layer for b in c.blocks) + 1)
    per_layer: list[dict] = [
        {"attention": {"no_op": True, "replace_with_linear": False, "n_heads_in_group": None, "sparsify": None,
                       "window_length": None, "num_sink_tokens": None,
                       "use_prefill_window_in_sink_attention": False, "unshifted_sink": False},
         "ffn": {"no_op": True, "replace_with_linear": False, "ffn_mult": None, "sparsify": None}}
        for _ in range(n_layers)
    ]
    for b in c.blocks:
        if b.role not in ("attn", "ffn"):
            raise ConfigError("nemotron-nas blocks need role 'attn' or 'ffn'")
        part = per_layer[b.layer]["attention" if b.role == "attn" else "ffn"]
        part["no_op"] = False
        if b.mixer == "linear":
            part["replace_with_linear"] = True
        elif b.mixer == "attention":
            part["n_heads_in_group"] = c.num_attention_heads // c.block_kv_heads(b)
        elif b.mixer == "mlp":
            part["ffn_mult"] = _decilm_mult_for_width(c.block_intermediate(b), c.hidden_size)
        else:
            raise ConfigError(f"nemotron-nas has no {b.mixer!r} blocks")
    return {
        "architectures": ["DeciLMForCausalLM"],
        "model_type": "nemotron-nas",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": n_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": None,
        "intermediate_size": None,
        "hidden_act": "silu",
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.norm_eps,
        "attention_bias": False,
        "mlp_bias": False,
        **_token_fields_to_hf(c),
        "block_configs": per_layer,
        **_rope_to_hf(c),
    }


def _decilm_mult_for_width(width: int, hidden: int) -> float:
    """Smallest ffn_mult (in steps of 1/2^k) whose DeciLM width equals `width`; raises when none does."""
    base = width * 3 / (2 * hidden)
    for step in (1 / 64, 1 / 256, 1 / 1024):
        for cand in (math.floor(base / step) * step, math.ceil(base / step) * step):
            if cand > 0 and decilm_ffn_width(cand, hidden) == width:
                return cand
    raise ConfigError(f"FFN width {width} is not reachable by DeciLM's ffn_mult rounding at hidden {hidden}")


__all__ = ["BlockSpec", "LMConfig", "MixerKind", "RopeConfig", "decilm_ffn_width"]
