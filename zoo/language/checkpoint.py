"""Key maps between our parameter names and each upstream checkpoint format, both directions.

A `KeyMap` is a list of `Rule`s: one of our tensors comes from one or more upstream tensors concatenated along a
dimension (q/k/v -> qkv, gate/up -> gate_up) and is split back the same way on save. Files on disk are always in
the upstream format, so transformers and vLLM load what we write. Unknown or missing keys raise, naming them.

Upstream naming (checkpoints.md):
* nemotron_h: `backbone.embeddings`, `backbone.layers.{i}.norm`, `backbone.layers.{i}.mixer.*`, `backbone.norm_f`,
  `lm_head`.
* llama / qwen2 / nemotron-nas: `model.embed_tokens`, `model.layers.{L}.input_layernorm` + `self_attn.*`,
  `model.layers.{L}.post_attention_layernorm` + `mlp.*`, `model.norm`, `lm_head`; DeciLM linear replacements are
  `self_attn.linear_attn` and `mlp.linear_mlp`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from zoo.language.config import LMConfig


@dataclass(frozen=True)
class Rule:
    """Our tensor `ours` <-> upstream tensors `hf` (concatenated along `dim` with sizes `sizes` when several)."""

    ours: str
    hf: tuple[str, ...]
    dim: int = 0
    sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.hf) > 1 and len(self.sizes) != len(self.hf):
            raise ValueError(f"rule for {self.ours}: {len(self.hf)} sources need {len(self.hf)} split sizes")


@dataclass
class KeyMap:
    """Ordered rules plus upstream keys to ignore on load (glob patterns, e.g. `mtp.*`)."""

    rules: list[Rule] = field(default_factory=list)
    ignore_hf: tuple[str, ...] = ()

    def add(self, ours: str, *hf: str, dim: int = 0, sizes: tuple[int, ...] = ()) -> None:
        self.rules.append(Rule(ours, tuple(hf), dim, sizes))

    def prefixed(self, ours_prefix: str, hf_prefix: str) -> KeyMap:
        """Same map under a submodule (e.g. `language_model.` on both sides inside a VLM)."""
        return KeyMap([Rule(ours_prefix + r.ours, tuple(hf_prefix + k for k in r.hf), r.dim, r.sizes)
                       for r in self.rules], tuple(hf_prefix + p for p in self.ignore_hf))

    def __add__(self, other: KeyMap) -> KeyMap:
        return KeyMap(self.rules + other.rules, self.ignore_hf + other.ignore_hf)

    def hf_keys(self) -> list[str]:
        return [k for r in self.rules for k in r.hf]

    def is_ignored(self, hf_key: str) -> bool:
        return any(fnmatch.fnmatchcase(hf_key, p) for p in self.ignore_hf)


def language_model_key_map(config: LMConfig) -> KeyMap:
    """Key map for a `LanguageModel` with `config` (our names relative to the LanguageModel)."""
    km = KeyMap()
    nemo = config.family == "nemotron_h"
    root = "backbone." if nemo else "model."
    km.add("embed.weight", root + ("embeddings.weight" if nemo else "embed_tokens.weight"))
    q = config.num_attention_heads * config.head_dim
    for i, blk in enumerate(config.blocks):
        ours = f"blocks.{i}."
        if nemo:
            pre, norm = f"backbone.layers.{i}.mixer.", f"backbone.layers.{i}.norm.weight"
        else:
            layer = f"model.layers.{blk.layer}."
            pre = layer + ("self_attn." if blk.role == "attn" else "mlp.")
            norm = layer + ("input_layernorm.weight" if blk.role == "attn" else "post_attention_layernorm.weight")
        km.add(ours + "norm.weight", norm)
        m = ours + "mixer."
        if blk.mixer == "mamba":
            for name in ("in_proj.weight", "conv1d.weight", "dt_bias", "A_log", "D", "norm.weight", "out_proj.weight"):
                km.add(m + name, pre + name)
            if config.use_conv_bias:
                km.add(m + "conv1d.bias", pre + "conv1d.bias")
        elif blk.mixer == "attention":
            kv = config.block_kv_heads(blk) * config.head_dim
            km.add(m + "qkv.weight", pre + "q_proj.weight", pre + "k_proj.weight", pre + "v_proj.weight",
                   sizes=(q, kv, kv))
            if config.attention_bias:
                km.add(m + "qkv.bias", pre + "q_proj.bias", pre + "k_proj.bias", pre + "v_proj.bias",
                       sizes=(q, kv, kv))
            km.add(m + "o_proj.weight", pre + "o_proj.weight")
        elif blk.mixer == "mlp":
            if config.mlp_activation == "relu2":
                km.add(m + "up_proj.weight", pre + "up_proj.weight")
            else:
                w = config.block_intermediate(blk)
                km.add(m + "gate_up.weight", pre + "gate_proj.weight", pre + "up_proj.weight", sizes=(w, w))
            km.add(m + "down_proj.weight", pre + "down_proj.weight")
        elif blk.mixer == "linear":
            km.add(m + "linear.weight", pre + ("linear_attn.weight" if blk.role == "attn" else "linear_mlp.weight"))
    km.add("norm_f.weight", root + ("norm_f.weight" if nemo else "norm.weight"))
    ignore = ["mtp.*", "*.rotary_emb.inv_freq"]  # MTP heads are unused by inference; inv_freq is derived
    if config.tie_word_embeddings:
        ignore.append("lm_head.weight")  # some tied checkpoints still store it
    else:
        km.add("lm_head.weight", "lm_head.weight")
    km.ignore_hf = tuple(ignore)
    return km
