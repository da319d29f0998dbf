"""The SigLIP vision tower, built with timm, and its checkpoint key map to and from Hugging Face Siglip names.

Papers: SigLIP, "Sigmoid Loss for Language Image Pre-Training" (arXiv 2303.15343); the tower is a plain ViT
("An Image is Worth 16x16 Words", arXiv 2010.11929) without class token, optionally with a multi-head attention
pooling ("MAP") head. Official code: google-research/big_vision; transformers `SiglipVisionModel`; timm
`VisionTransformer(class_token=False, global_pool="map")`.

Design choices:
* The blocks are a timm `VisionTransformer` at the checkpoint's dims (hidden, depth, heads, MLP width, patch, image
  size, LayerNorm eps, activation; fused SDPA attention), wrapped by `SiglipTower`, which has timm's encoder
  interface (`forward_features`, `forward_intermediates`, `forward_head`). Two parameters are held by the wrapper
  in the HF shape so every checkpoint tensor maps onto one of ours without reshaping: the position table
  (num_patches, C) and the MAP pooling head (`nn.MultiheadAttention`, packed in_proj, as HF stores it).
* Files on disk stay in the HF layout. `siglip_key_map` is declarative: `SIGLIP_KEY_MAP` (HF name -> our name,
  `{}` = layer index) plus one fused rule per block (q, k, v -> timm's qkv, split back on save). Unknown or missing
  keys raise in `zoo.hub.load_weights`, naming the key.
* `SiglipTower.features` picks Eagle's feature layer: `select_layer = -1` is the post-LayerNorm last hidden state
  (HF `last_hidden_state`); any other value is HF `hidden_states[select_layer]` (no final norm), computed without
  running the blocks after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from timm.layers import Mlp, QuickGELU
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from zoo.errors import ConfigError
from zoo.language.checkpoint import KeyMap

# HF `hidden_act` -> activation module factory.
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu_pytorch_tanh": partial(nn.GELU, approximate="tanh"),
    "gelu_new": partial(nn.GELU, approximate="tanh"),
    "gelu": nn.GELU,
    "quick_gelu": QuickGELU,
}


# ---------------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiglipConfig:
    """Dimensions of a SigLIP vision tower (HF `SiglipVisionConfig` fields).

    Attributes:
        hidden_size: Token width C.
        intermediate_size: MLP hidden width.
        num_hidden_layers: Transformer blocks.
        num_attention_heads: Attention heads (C must divide evenly).
        image_size: Input side in pixels.
        patch_size: Patch side in pixels.
        num_channels: Input channels.
        layer_norm_eps: LayerNorm epsilon.
        hidden_act: HF activation name.
        use_head: Whether the tower has the MAP pooling head (`vision_use_head`).
    """

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"
    use_head: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"vision_config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"vision_config: image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ConfigError(
                f"vision_config.hidden_act {self.hidden_act!r} is not supported; known: {', '.join(_ACTIVATIONS)}"
            )

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @classmethod
    def from_hf(cls, d: Mapping[str, Any]) -> SiglipConfig:
        """Build from a `vision_config` dict (model_type `siglip_vision_model`)."""
        model_type = d.get("model_type", "siglip_vision_model")
        if model_type != "siglip_vision_model":
            raise ConfigError(
                f"vision_config.model_type {model_type!r} is not supported (expected "
                f"'siglip_vision_model'; SigLIP2 / NaFlex towers are not implemented)"
            )
        defaults = cls()
        return cls(
            hidden_size=int(d.get("hidden_size", 768)),
            intermediate_size=int(d.get("intermediate_size", 3072)),
            num_hidden_layers=int(d.get("num_hidden_layers", 12)),
            num_attention_heads=int(d.get("num_attention_heads", 12)),
            image_size=int(d.get("image_size", 224)),
            patch_size=int(d.get("patch_size", 16)),
            num_channels=int(d.get("num_channels", 3)),
            layer_norm_eps=float(d.get("layer_norm_eps", defaults.layer_norm_eps)),
            hidden_act=str(d.get("hidden_act", defaults.hidden_act)),
            use_head=bool(d.get("vision_use_head", True)),
        )

    def to_hf(self) -> dict[str, Any]:
        """The `vision_config` dict transformers' `SiglipVisionConfig` accepts."""
        d = asdict(self)
        d["vision_use_head"] = d.pop("use_head")
        return {"model_type": "siglip_vision_model", **d}


# ---------------------------------------------------------------------------------------------------------------------
# Tower
# ---------------------------------------------------------------------------------------------------------------------


class MapHead(nn.Module):
    """SigLIP's multi-head attention pooling: a learned probe attends over the patch tokens, then a residual MLP.

    Parameter names and shapes are HF's (`probe`, `attention.in_proj_*`, `attention.out_proj.*`, `layernorm.*`,
    `mlp.fc1/fc2.*`). Eagle never reads the pooled output; the head exists so checkpoints that carry it round-trip.
    """

    def __init__(self, cfg: SiglipConfig) -> None:
        super().__init__()
        c = cfg.hidden_size
        self.probe = nn.Parameter(torch.zeros(1, 1, c))
        self.attention = nn.MultiheadAttention(c, cfg.num_attention_heads, batch_first=True)
        self.layernorm = nn.LayerNorm(c, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(c, cfg.intermediate_size, act_layer=_ACTIVATIONS[cfg.hidden_act])

    def forward(self, x: Tensor) -> Tensor:
        """(n, P, C) final features -> (n, C) pooled embedding."""
        probe = self.probe.expand(x.shape[0], -1, -1)
        h = self.attention(probe, x, x, need_weights=False)[0]
        h = h + self.mlp(self.layernorm(h))
        return h[:, 0]


class SiglipTower(nn.Module):
    """HF `SiglipVisionModel`, computed by timm blocks.

    Shapes: n tiles, s image side, P = (s / patch)^2 patches, C hidden size.
    """

    def __init__(self, cfg: SiglipConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # timm sizes the MLP as int(dim * mlp_ratio); the half-unit nudge keeps float error from giving 4303 for 4304.
        mlp_ratio = (cfg.intermediate_size + 0.5) / cfg.hidden_size
        self.vit = VisionTransformer(
            img_size=cfg.image_size,
            patch_size=cfg.patch_size,
            in_chans=cfg.num_channels,
            num_classes=0,
            global_pool="",
            embed_dim=cfg.hidden_size,
            depth=cfg.num_hidden_layers,
            num_heads=cfg.num_attention_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            class_token=False,
            pos_embed="none",  # held below in HF's (P, C) shape
            norm_layer=partial(nn.LayerNorm, eps=cfg.layer_norm_eps),
            act_layer=_ACTIVATIONS[cfg.hidden_act],
        )
        assert self.vit.blocks[0].mlp.fc1.out_features == cfg.intermediate_size
        self.pos_embed = nn.Parameter(torch.zeros(cfg.grid * cfg.grid, cfg.hidden_size))
        self.head = MapHead(cfg) if cfg.use_head else None

    @torch.no_grad()
    def init_weights(self) -> None:
        """Random init (truncated normal 0.02 for weights, zero biases, unit LayerNorms), as for a fresh ViT."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
                nn.init.zeros_(m.in_proj_bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.head is not None:
            nn.init.trunc_normal_(self.head.probe, std=0.02)

    def _embed(self, pixel_values: Tensor) -> Tensor:
        x = self.vit.patch_embed(pixel_values)  # (n, P, C), patches row-major
        return x + self.pos_embed.to(x.dtype)

    def forward_intermediates(self, pixel_values: Tensor, indices: Sequence[int]) -> list[Tensor]:
        """Outputs of the given blocks (0-based; negative counts from the end), without the final norm.

        Args:
            pixel_values: (n, 3, s, s) normalised tiles.
            indices: Block indices.

        Returns:
            One (n, P, C) tensor per index, in the order asked; blocks after the last one are not run.
        """
        depth = len(self.vit.blocks)
        wanted = [i % depth if -depth <= i < depth else None for i in indices]
        if None in wanted:
            raise ValueError(f"block indices {list(indices)} out of range for a {depth}-block tower")
        x, outs = self._embed(pixel_values), {}
        for i, block in enumerate(self.vit.blocks[: max(wanted) + 1]):
            x = block(x)
            outs[i] = x
        return [outs[i] for i in wanted]

    def forward_features(self, pixel_values: Tensor) -> Tensor:
        """(n, 3, s, s) -> (n, P, C): HF `last_hidden_state` (all blocks, then the post LayerNorm)."""
        x = self._embed(pixel_values)
        for block in self.vit.blocks:
            x = block(x)
        return self.vit.norm(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """(n, P, C) final features -> (n, C) MAP-pooled embedding (HF `pooler_output`)."""
        if self.head is None:
            raise ConfigError("this SigLIP tower has no pooling head (vision_use_head is false)")
        return self.head(features)

    def features(self, pixel_values: Tensor, select_layer: int = -1) -> Tensor:
        """Patch features of the layer a VLM reads.

        Args:
            pixel_values: (n, 3, s, s) normalised tiles.
            select_layer: -1 for HF `last_hidden_state`; otherwise an index into HF `hidden_states`
                (0 = embeddings, k = output of block k; negative counts from the end, -1 excluded).

        Returns:
            (n, P, C) features, row-major over the patch grid.
        """
        depth = len(self.vit.blocks)
        if select_layer == -1:
            return self.forward_features(pixel_values)
        n_blocks = select_layer if select_layer >= 0 else depth + 1 + select_layer
        if not 0 <= n_blocks <= depth:
            raise ConfigError(f"select_layer {select_layer} is out of range for a {depth}-layer vision tower")
        if n_blocks == 0:
            return self._embed(pixel_values)
        return self.forward_intermediates(pixel_values, [n_blocks - 1])[0]

    def forward(self, pixel_values: Tensor) -> Tensor:
        """Same as `forward_features`."""
        return self.forward_features(pixel_values)


# ---------------------------------------------------------------------------------------------------------------------
# Key map: HF Siglip names <-> ours
# ---------------------------------------------------------------------------------------------------------------------

# HF name (relative to `SiglipVisionModel`) -> our name (relative to `SiglipTower`); "{}" is a block index.
SIGLIP_KEY_MAP: dict[str, str] = {
    "embeddings.patch_embedding.weight": "vit.patch_embed.proj.weight",
    "embeddings.patch_embedding.bias": "vit.patch_embed.proj.bias",
    "embeddings.position_embedding.weight": "pos_embed",
    "encoder.layers.{}.layer_norm1.weight": "vit.blocks.{}.norm1.weight",
    "encoder.layers.{}.layer_norm1.bias": "vit.blocks.{}.norm1.bias",
    "encoder.layers.{}.self_attn.out_proj.weight": "vit.blocks.{}.attn.proj.weight",
    "encoder.layers.{}.self_attn.out_proj.bias": "vit.blocks.{}.attn.proj.bias",
    "encoder.layers.{}.layer_norm2.weight": "vit.blocks.{}.norm2.weight",
    "encoder.layers.{}.layer_norm2.bias": "vit.blocks.{}.norm2.bias",
    "encoder.layers.{}.mlp.fc1.weight": "vit.blocks.{}.mlp.fc1.weight",
    "encoder.layers.{}.mlp.fc1.bias": "vit.blocks.{}.mlp.fc1.bias",
    "encoder.layers.{}.mlp.fc2.weight": "vit.blocks.{}.mlp.fc2.weight",
    "encoder.layers.{}.mlp.fc2.bias": "vit.blocks.{}.mlp.fc2.bias",
    "post_layernorm.weight": "vit.norm.weight",
    "post_layernorm.bias": "vit.norm.bias",
}
# The pooling head keeps HF's names (see MapHead); listed for the key map.
_HEAD_KEYS = (
    "probe",
    "attention.in_proj_weight",
    "attention.in_proj_bias",
    "attention.out_proj.weight",
    "attention.out_proj.bias",
    "layernorm.weight",
    "layernorm.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)


def siglip_key_map(cfg: SiglipConfig, *, ours: str = "", hf: str = "") -> KeyMap:
    """Key map of a `SiglipTower` against HF `SiglipVisionModel` names.

    Args:
        cfg: The tower's config (depth; whether it has the head).
        ours: Prefix of the tower inside our model (e.g. "vision_model.").
        hf: Prefix of the tower in the checkpoint (e.g. "vision_model.vision_model." for Eagle, saved by
            transformers 4.x; "" for a `SiglipVisionModel` saved by transformers 5).

    Returns:
        The KeyMap: one rule per tensor, plus the fused q/k/v rule per block (sizes C, C, C along dim 0).
    """
    km = KeyMap()
    c = cfg.hidden_size
    for hf_name, our_name in SIGLIP_KEY_MAP.items():
        layers = range(cfg.num_hidden_layers) if "{}" in hf_name else [None]
        for i in layers:
            km.add(ours + our_name.format(i), hf + hf_name.format(i))
    for i in range(cfg.num_hidden_layers):
        for w in ("weight", "bias"):
            qkv = [f"{hf}encoder.layers.{i}.self_attn.{p}_proj.{w}" for p in "qkv"]
            km.add(f"{ours}vit.blocks.{i}.attn.qkv.{w}", *qkv, sizes=(c, c, c))
    if cfg.use_head:
        for k in _HEAD_KEYS:
            km.add(f"{ours}head.{k}", f"{hf}head.{k}")
    else:
        km.ignore_hf = (f"{hf}head.*",)  # a stored but disabled head is unused by every consumer of the features
    return km
