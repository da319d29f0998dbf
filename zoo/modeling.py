"""What every loaded zoo model can do beyond its forward pass, and the causal LM class built on the backbone.

`ZooModel` is a mixin (composition of behaviours, no deep hierarchies): generation and chat come from
`zoo.generate` / `zoo.chat`, files from `zoo.hub`, releases from `zoo.release`. A model class provides
`from_hf_config(dict)` and `hf_key_map()`; see docs/internals.md.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.language.checkpoint import KeyMap, language_model_key_map
from zoo.language.config import LMConfig
from zoo.language.model import LanguageModel


class ZooModel:
    """Mixin: generate, chat, save_pretrained, push_to_hub, plus the metadata `zoo.load` attaches."""

    hf_config: dict[str, Any]
    tokenizer: Any = None
    processor: Any = None
    chat_format: str | None = None
    entry: Any = None
    lineage: dict[str, Any] | None = None

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kw: Any):
        from zoo.generate import generate

        return generate(self, input_ids, attention_mask, **kw)

    def chat(self, messages_or_text: Any, **kw: Any):
        from zoo.chat import chat

        return chat(self, messages_or_text, **kw)

    def save_pretrained(self, path: str | Path, **kw: Any) -> Path:
        from zoo.loading import save_pretrained

        return save_pretrained(self, path, **kw)

    def push_to_hub(self, repo_id: str, **kw: Any):
        from zoo.release import push_to_hub

        return push_to_hub(self, repo_id, **kw)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # type: ignore[attr-defined]


class CausalLM(LanguageModel, ZooModel):
    """A text-only zoo model: the shared `LanguageModel` plus the `ZooModel` behaviours.

    Serves nemotron_h, llama, qwen2 and nemotron-nas checkpoints.
    """

    def __init__(self, config: LMConfig, hf_config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        # a deep copy: registry configs are shared module-level data that no model may mutate
        self.hf_config = copy.deepcopy(hf_config) if hf_config is not None else config.to_hf()

    @classmethod
    def from_hf_config(cls, hf_config: dict[str, Any]) -> CausalLM:
        return cls(LMConfig.from_hf(hf_config), hf_config)

    def hf_key_map(self) -> KeyMap:
        return language_model_key_map(self.config)

    def export_hf_config(self) -> dict[str, Any]:
        """config.json to write: the upstream fields we model, over any extra fields the source file had."""
        out = copy.deepcopy(self.hf_config)
        fresh = self.config.to_hf()
        if self.config.family == "nemotron_h":
            # the source may use the list form; writing both forms would disagree after pruning
            for k in ("layers_block_type", "layer_types"):
                out.pop(k, None)
        out.update(fresh)
        return out


def init_module(module: nn.Module, seed: int) -> None:
    """Deterministic random init of a freshly built module (fork the RNG so callers' streams are untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(module, "init_weights"):
            module.init_weights()
