"""Eagle 2.5 vision-language model: SigLIP tower + pixel-shuffle projector + the shared `LanguageModel`.

Paper: "Eagle 2.5: Boosting Long-Context Post-Training for Frontier VLMs" (arXiv 2504.15271); checkpoint
`nvidia/Eagle2.5-8B` (`modeling_eagle2_5_vl.py`, model_type `eagle_2_5_vl`).

Forward: tiles (N, 3, s, s) -> SigLIP features at `select_layer` (N, P, C) -> pixel shuffle 0.5 + `mlp1`
(N * P / 4, H) -> written, in order, into the embedding rows of the `<IMG_CONTEXT>` tokens -> backbone on
`inputs_embeds`. The backbone is whatever `text_config` describes: Qwen2 as released, or a hybrid Nemotron-H
(the `nano-vl-tiny` entry), with no change to the vision side.

Checkpoint layout (upstream, both directions): `vision_model.vision_model.*` (HF Siglip as saved by transformers
4.x), `mlp1.{0,1,3}.*`, `language_model.*` (the text model's own keys: `model.*` + `lm_head.*` for Qwen2/Llama,
`backbone.*` + `lm_head.*` for Nemotron-H).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.errors import ConfigError, ZooError
from zoo.language.checkpoint import KeyMap, language_model_key_map
from zoo.language.config import LMConfig
from zoo.language.model import LanguageModel, ModelOutput
from zoo.modeling import ZooModel
from zoo.vision.processor import EagleProcessor, ProcessorConfig
from zoo.vision.projector import build_mlp1, project
from zoo.vision.siglip import SiglipConfig, SiglipTower, siglip_key_map

# Where the tower sits in Eagle checkpoints: the remote-code model holds a `SiglipVisionModel` as `vision_model`,
# and transformers 4.x saved that class with its own inner `vision_model.` prefix.
VISION_HF_PREFIX = "vision_model.vision_model."
# text_config.architectures -> model_type, for configs that omit text_config.model_type.
_TEXT_ARCHS = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama", "NemotronHForCausalLM": "nemotron_h"}


@dataclass(frozen=True)
class EagleVLConfig:
    """Architecture of an Eagle VLM, derived from its config.json.

    Attributes:
        vision: SigLIP tower dims.
        text: Backbone config.
        downsample_ratio: Pixel-shuffle ratio (0.5: 2x2 patches -> 1 token).
        select_layer: Vision layer fed to the projector (-1 = final, post-LayerNorm).
        image_token_id: Id of `<IMG_CONTEXT>`.
        tile_size: Tile side in pixels (`force_image_size`).
    """

    vision: SiglipConfig
    text: LMConfig
    downsample_ratio: float = 0.5
    select_layer: int = -1
    image_token_id: int = 151667
    tile_size: int = 448

    def __post_init__(self) -> None:
        if self.tile_size != self.vision.image_size:
            # Resizing the position table belongs to loading (not implemented): refuse instead of guessing.
            raise ConfigError(
                f"config.json: force_image_size {self.tile_size} differs from vision_config.image_size "
                f"{self.vision.image_size}; position-embedding resizing is not supported"
            )
        k = round(1 / self.downsample_ratio)
        if abs(k * self.downsample_ratio - 1) > 1e-6 or self.vision.grid % k:
            raise ConfigError(
                f"config.json: downsample_ratio {self.downsample_ratio} does not divide the "
                f"{self.vision.grid}x{self.vision.grid} patch grid"
            )

    @property
    def tokens_per_tile(self) -> int:
        return round(self.vision.grid**2 * self.downsample_ratio**2)

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> EagleVLConfig:
        """Parse an `eagle_2_5_vl` config.json; raises ConfigError naming the field."""
        vision_d = hf.get("vision_config")
        text_d = hf.get("text_config") or hf.get("llm_config")
        if not isinstance(vision_d, dict):
            raise ConfigError("config.json: eagle_2_5_vl needs a vision_config object")
        if not isinstance(text_d, dict):
            raise ConfigError("config.json: eagle_2_5_vl needs a text_config object")
        text_d = dict(text_d)
        if "model_type" not in text_d:
            arch = (text_d.get("architectures") or [None])[0]
            if arch not in _TEXT_ARCHS:
                raise ConfigError(f"config.json: text_config has no model_type and unknown architectures {arch!r}")
            text_d["model_type"] = _TEXT_ARCHS[arch]
        if not hf.get("use_pixel_shuffle", True):
            raise ConfigError("config.json: use_pixel_shuffle=false is not supported")
        vision = SiglipConfig.from_hf(vision_d)
        return cls(
            vision=vision,
            text=LMConfig.from_hf(text_d),
            downsample_ratio=float(hf.get("downsample_ratio", 0.5)),
            select_layer=int(hf.get("select_layer", -1)),
            image_token_id=int(hf.get("image_token_index", hf.get("image_token_id", 151667))),
            tile_size=int(hf.get("force_image_size") or vision.image_size),
        )


class EagleVLModel(nn.Module, ZooModel):
    """Vision tower + projector + shared backbone (see module docstring).

    Shapes: b batch, l tokens, N tiles, s tile side, P patches per tile, C vision width, H backbone width.
    """

    # Tiles per vision-tower call: bounds activation memory for long videos (512 frames = 512 tiles).
    vision_chunk: int = 64

    def __init__(self, config: EagleVLConfig, hf_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.hf_config = dict(hf_config) if hf_config is not None else {}
        self.vision_model = SiglipTower(config.vision)
        self.mlp1 = build_mlp1(config.vision.hidden_size, config.text.hidden_size, config.downsample_ratio)
        self.language_model = LanguageModel(config.text)
        self.processor: EagleProcessor | None = None

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_hf_config(cls, hf_config: dict[str, Any]) -> EagleVLModel:
        return cls(EagleVLConfig.from_hf(hf_config), hf_config)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Random init of all three parts (tower: ViT init; projector: N(0, 0.02); backbone: its own init)."""
        self.vision_model.init_weights()
        for m in self.mlp1:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.language_model.init_weights()

    def hf_key_map(self) -> KeyMap:
        """Ours <-> `vision_model.vision_model.*`, `mlp1.*`, `language_model.*`."""
        km = siglip_key_map(self.config.vision, ours="vision_model.", hf=VISION_HF_PREFIX)
        for i in (0, 1, 3):  # LayerNorm, Linear, (GELU has no parameters), Linear
            for w in ("weight", "bias"):
                km.add(f"mlp1.{i}.{w}", f"mlp1.{i}.{w}")
        lm = language_model_key_map(self.config.text).prefixed("language_model.", "language_model.")
        return km + lm

    def export_hf_config(self) -> dict[str, Any]:
        """config.json to write: the source file's fields with the parts we model refreshed."""
        out = copy.deepcopy(self.hf_config)
        c = self.config
        out.update(
            {
                "model_type": "eagle_2_5_vl",
                "architectures": out.get("architectures") or ["Eagle2_5_VLForConditionalGeneration"],
                "downsample_ratio": c.downsample_ratio,
                "select_layer": c.select_layer,
                "image_token_index": c.image_token_id,
                "force_image_size": c.tile_size,
                "use_pixel_shuffle": True,
            }
        )
        out["vision_config"] = {**out.get("vision_config", {}), **c.vision.to_hf()}
        out["text_config"] = {**out.get("text_config", {}), **c.text.to_hf()}
        out.pop("llm_config", None)
        return out

    # ------------------------------------------------------------------------------------------------ processor
    @property
    def chat_format(self) -> str | None:
        """The recorded chat format, else ChatML: Eagle 2.5's only template (config.json `template` "qwen2-chat")."""
        return self.__dict__.get("_chat_format") or "chatml"

    @chat_format.setter
    def chat_format(self, value: str | None) -> None:
        self.__dict__["_chat_format"] = value

    def load_processor(self, path: str | Path) -> None:
        """Called by `zoo.load` on a checkpoint dir: the processor reads config.json + preprocessor_config.json."""
        path = Path(path)
        pre_path = path / "preprocessor_config.json"
        pre = json.loads(pre_path.read_text()) if pre_path.exists() else None
        if self.tokenizer is None:
            return
        self.processor = EagleProcessor(self.tokenizer, ProcessorConfig.from_files(self.hf_config, pre, str(path)))
        self._check_image_token()

    def tiny_processor(self) -> None:
        """Called by `zoo.load(..., tiny=True)`: give the tiny tokenizer Eagle's three image tokens."""
        if self.tokenizer is None:
            return
        tok = copy.deepcopy(self.tokenizer)  # zoo.tokenizers caches its tokenizers: never mutate the shared one
        tok.add_special_tokens(
            {"additional_special_tokens": ["<img>", "</img>", "<IMG_CONTEXT>"]}, replace_extra_special_tokens=False
        )
        self.tokenizer = tok
        self.processor = EagleProcessor(tok, ProcessorConfig.from_files(self.hf_config))
        self._check_image_token()

    def save_processor(self, path: str | Path) -> None:
        """Called by `save_pretrained`: write preprocessor_config.json."""
        if self.processor is not None:
            self.processor.save_pretrained(path)

    def _check_image_token(self) -> None:
        got = self.processor.image_token_id if self.processor is not None else None
        if got != self.config.image_token_id:
            raise ConfigError(
                f"tokenizer maps <IMG_CONTEXT> to {got}, config.json image_token_index is {self.config.image_token_id}"
            )

    def prepare_chat_inputs(
        self,
        prompt: str,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
        **kw: Any,
    ) -> dict[str, Tensor]:
        """Rendered prompt + media -> model inputs for `zoo.generate` (the hook `zoo.chat.chat` calls).

        Args:
            prompt: The prompt as rendered by `zoo.chat` (ChatML), optionally with `<image-k>` / `<video-k>`
                placeholders; media it does not reference go at the start of the last user turn.
            images: Images (PIL, (H, W, 3) uint8 arrays or paths).
            videos: Videos (paths or `zoo.vision.processor.Video`).
            audios: Not supported by this model; must be empty.
            **kw: Passed to the processor (e.g. `max_len` for Automatic Degrade Sampling).

        Returns:
            {"input_ids": (1, L), "attention_mask": (1, L), "pixel_values": (N, 3, s, s) when there are media}.
        """
        if audios:
            raise ZooError("Eagle models take images and videos, not audio")
        if self.processor is None:
            raise ZooError("this model has no processor (the checkpoint has no tokenizer)")
        out = self.processor(prompt, images=images, videos=videos, chat=False, **kw)
        return self.to_model_inputs(out)

    def to_model_inputs(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Move processor outputs to this model's device (pixels also to its dtype)."""
        p = self.language_model.embed.weight
        return {k: v.to(p.device, dtype=p.dtype if v.is_floating_point() else None) for k, v in inputs.items()}

    # ------------------------------------------------------------------------------------------------ forward
    def new_cache(self, batch_size: int):
        return self.language_model.new_cache(batch_size)

    def image_features(self, pixel_values: Tensor) -> Tensor:
        """(N, 3, s, s) tiles -> (N * tokens_per_tile, H) embeddings, tiles in order."""
        c = self.config
        dtype = self.mlp1[1].weight.dtype
        parts = []
        for chunk in pixel_values.to(dtype).split(self.vision_chunk):
            feats = self.vision_model.features(chunk, c.select_layer)  # (n, P, C)
            parts.append(project(feats, self.mlp1, c.vision.grid, c.downsample_ratio))
        return torch.cat(parts)

    def embed(self, input_ids: Tensor, pixel_values: Tensor | None = None) -> Tensor:
        """Token embeddings with the image features written into the `<IMG_CONTEXT>` rows: (b, l, H)."""
        x = self.language_model.embed_tokens(input_ids)
        mask = input_ids == self.config.image_token_id
        n_slots = int(mask.sum())
        if pixel_values is None:
            if n_slots:
                raise ZooError(f"input has {n_slots} <IMG_CONTEXT> tokens but no pixel_values")
            return x
        feats = self.image_features(pixel_values)
        if feats.shape[0] != n_slots:
            raise ZooError(
                f"input has {n_slots} <IMG_CONTEXT> tokens but pixel_values give {feats.shape[0]} "
                f"features ({pixel_values.shape[0]} tiles x {self.config.tokens_per_tile})"
            )
        # Rows are filled in reading order (batch row 0 first), matching the processor's tile order.
        return x.masked_scatter(mask[..., None], feats.to(x.dtype))

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        cache=None,
        *,
        pixel_values: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        document_ids: Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> ModelOutput:
        """Run the VLM.

        Args:
            input_ids: (b, l) token ids with `<IMG_CONTEXT>` placeholders.
            attention_mask: (b, l) 0/1, left padding only.
            cache: A `HybridCache` from `new_cache` (decode steps pass no pixels).
            pixel_values: (N, 3, s, s) tiles of every image/frame of the batch, in placeholder order.
            inputs_embeds: (b, l, H) instead of input_ids (pixels must then be merged by the caller).
            document_ids: (b, l) packed-sample ids.
            logits_to_keep: Logits for the last n positions only (0 = all).

        Returns:
            The backbone's ModelOutput (logits (b, l, vocab), cache, hidden_states).
        """
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = self.embed(input_ids, pixel_values)
        elif pixel_values is not None:
            raise ValueError("pixel_values cannot be combined with inputs_embeds")
        return self.language_model(
            None,
            attention_mask,
            cache,
            inputs_embeds=inputs_embeds,
            document_ids=document_ids,
            logits_to_keep=logits_to_keep,
        )
