"""The SigLIP vision tower, built with timm, and its checkpoint key map to and from Hugging Face Siglip names.

Papers: SigLIP, "Sigmoid Loss for Language Image Pre-Training" (arXiv 2303.15343); the tower is a plain ViT
("An Image is Worth 16x16 Words", arXiv 2010.11929) without class token, optionally with a multi-head attention
pooling ("MAP") head. Official code: google-research/big_vision; transformers `SiglipVisionModel`; timm
`VisionTransformer(class_token=False, global_pool="map")`.

Design choices:
* The tower *is* a timm `VisionTransformer` at the checkpoint's dims (hidden, depth, heads, MLP width, patch, image
  size, LayerNorm eps, activation), so it has timm's encoder interface (`forward_features`,
  `forward_intermediates`, `forward_head`) and fused attention. Parameter names are timm's.
* Files on disk stay in the HF layout. `SIGLIP_KEY_MAP` (HF name -> timm name, `{}` = layer index) plus two
  declared concatenation transforms (q, k, v -> qkv; the MAP head's packed in_proj -> q, kv) convert both ways;
  unknown or missing keys raise, naming the key.
* `select_features` picks Eagle's feature layer: `select_layer = -1` is the post-LayerNorm last hidden state
  (`last_hidden_state`); any other value is HF `hidden_states[select_layer]` (no final norm), computed without
  running the blocks after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from timm.layers import QuickGELU
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from zoo.errors import CheckpointError, ConfigError

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


def build_siglip_tower(cfg: SiglipConfig) -> VisionTransformer:
    """A timm VisionTransformer with exactly the parameters of HF `SiglipVisionModel(cfg)` (random init)."""
    # timm sizes the MLP as int(dim * mlp_ratio); the half-unit nudge keeps float error from rounding 4304 to 4303.
    mlp_ratio = (cfg.intermediate_size + 0.5) / cfg.hidden_size
    vit = VisionTransformer(
        img_size=cfg.image_size,
        patch_size=cfg.patch_size,
        in_chans=cfg.num_channels,
        num_classes=0,
        global_pool="map" if cfg.use_head else "",
        embed_dim=cfg.hidden_size,
        depth=cfg.num_hidden_layers,
        num_heads=cfg.num_attention_heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=True,
        class_token=False,
        norm_layer=partial(nn.LayerNorm, eps=cfg.layer_norm_eps),
        act_layer=_ACTIVATIONS[cfg.hidden_act],
    )
    assert vit.blocks[0].mlp.fc1.out_features == cfg.intermediate_size
    return vit


def select_features(vit: VisionTransformer, pixel_values: Tensor, select_layer: int = -1) -> Tensor:
    """Patch features of the layer Eagle reads.

    Args:
        vit: The tower.
        pixel_values: Normalised tiles, (n, 3, s, s).
        select_layer: -1 for the final (post-LayerNorm) output; otherwise an index into HF `hidden_states`
            (0 = patch + position embeddings, k = output of block k; negative counts from the end).

    Returns:
        (n, P, C) features, P = (s / patch)^2, row-major over the patch grid.
    """
    depth = len(vit.blocks)
    if select_layer == -1:
        return vit.forward_features(pixel_values)
    n_blocks = select_layer if select_layer >= 0 else depth + 1 + select_layer
    if not 0 <= n_blocks <= depth:
        raise ConfigError(f"select_layer {select_layer} is out of range for a {depth}-layer vision tower")
    x = vit.norm_pre(vit._pos_embed(vit.patch_embed(pixel_values)))
    for block in vit.blocks[:n_blocks]:  # HF hidden_states[k] = output after k blocks, no final norm
        x = block(x)
    return x


# ---------------------------------------------------------------------------------------------------------------------
# Key map: HF Siglip names <-> timm names
# ---------------------------------------------------------------------------------------------------------------------

# One-to-one renames, HF -> timm. "{}" is a layer index. Shapes agree except where `_RESHAPE` says otherwise.
SIGLIP_KEY_MAP: dict[str, str] = {
    "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
    "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
    "embeddings.position_embedding.weight": "pos_embed",
    "encoder.layers.{}.layer_norm1.weight": "blocks.{}.norm1.weight",
    "encoder.layers.{}.layer_norm1.bias": "blocks.{}.norm1.bias",
    "encoder.layers.{}.self_attn.out_proj.weight": "blocks.{}.attn.proj.weight",
    "encoder.layers.{}.self_attn.out_proj.bias": "blocks.{}.attn.proj.bias",
    "encoder.layers.{}.layer_norm2.weight": "blocks.{}.norm2.weight",
    "encoder.layers.{}.layer_norm2.bias": "blocks.{}.norm2.bias",
    "encoder.layers.{}.mlp.fc1.weight": "blocks.{}.mlp.fc1.weight",
    "encoder.layers.{}.mlp.fc1.bias": "blocks.{}.mlp.fc1.bias",
    "encoder.layers.{}.mlp.fc2.weight": "blocks.{}.mlp.fc2.weight",
    "encoder.layers.{}.mlp.fc2.bias": "blocks.{}.mlp.fc2.bias",
    "post_layernorm.weight": "norm.weight",
    "post_layernorm.bias": "norm.bias",
    # MAP pooling head (only when the config has `vision_use_head`; Eagle does not use its output).
    "head.probe": "attn_pool.latent",
    "head.attention.out_proj.weight": "attn_pool.proj.weight",
    "head.attention.out_proj.bias": "attn_pool.proj.bias",
    "head.layernorm.weight": "attn_pool.norm.weight",
    "head.layernorm.bias": "attn_pool.norm.bias",
    "head.mlp.fc1.weight": "attn_pool.mlp.fc1.weight",
    "head.mlp.fc1.bias": "attn_pool.mlp.fc1.bias",
    "head.mlp.fc2.weight": "attn_pool.mlp.fc2.weight",
    "head.mlp.fc2.bias": "attn_pool.mlp.fc2.bias",
}

# HF (num_patches, C) embedding table <-> timm (1, num_patches, C) parameter.
_RESHAPE = {"pos_embed"}


@dataclass(frozen=True)
class Concat:
    """A many-to-many transform: HF tensors concatenated along dim 0 equal the timm tensors concatenated.

    Attributes:
        hf: HF keys ("{}" = layer index), in concatenation order.
        timm: timm keys, in concatenation order.
        hf_rows: Rows of each HF tensor in units of C (hidden size).
        timm_rows: Rows of each timm tensor in units of C.
    """

    hf: tuple[str, ...]
    timm: tuple[str, ...]
    hf_rows: tuple[int, ...]
    timm_rows: tuple[int, ...]

    def to_timm(self, tensors: list[Tensor], hidden: int) -> list[Tensor]:
        return self._regroup(tensors, self.hf_rows, self.timm_rows, hidden)

    def to_hf(self, tensors: list[Tensor], hidden: int) -> list[Tensor]:
        return self._regroup(tensors, self.timm_rows, self.hf_rows, hidden)

    @staticmethod
    def _regroup(
        tensors: list[Tensor], rows_in: tuple[int, ...], rows_out: tuple[int, ...], hidden: int
    ) -> list[Tensor]:
        for t, r in zip(tensors, rows_in):
            if t.shape[0] != r * hidden:
                raise CheckpointError(f"expected {r * hidden} rows, got tensor of shape {tuple(t.shape)}")
        return list(torch.cat(tensors, 0).split([r * hidden for r in rows_out], 0))


SIGLIP_CONCATS: tuple[Concat, ...] = tuple(
    Concat(
        hf=tuple(f"encoder.layers.{{}}.self_attn.{p}_proj.{w}" for p in "qkv"),
        timm=(f"blocks.{{}}.attn.qkv.{w}",),
        hf_rows=(1, 1, 1),
        timm_rows=(3,),
    )
    for w in ("weight", "bias")
) + tuple(
    Concat(
        hf=(f"head.attention.in_proj_{w}",),
        timm=(f"attn_pool.q.{w}", f"attn_pool.kv.{w}"),
        hf_rows=(3,),
        timm_rows=(1, 2),
    )
    for w in ("weight", "bias")
)


def _expand(template: str, depth: int) -> list[tuple[str, str]]:
    """[(layer, key)] for a template: every layer when it has "{}", else the key once."""
    if "{}" in template:
        return [(str(i), template.format(i)) for i in range(depth)]
    return [("", template)]


def siglip_key_pairs(cfg: SiglipConfig) -> list[tuple[str, str]]:
    """Every (HF key, timm key) one-to-one pair for a tower of this config."""
    pairs = []
    for hf, tm in SIGLIP_KEY_MAP.items():
        if (hf.startswith("head.")) and not cfg.use_head:
            continue
        for layer, hf_key in _expand(hf, cfg.num_hidden_layers):
            pairs.append((hf_key, tm.format(layer) if layer else tm))
    return pairs


def siglip_concats(cfg: SiglipConfig) -> list[tuple[Concat, list[str], list[str]]]:
    """Every concatenation transform for a tower of this config, with its expanded (HF keys, timm keys)."""
    out = []
    for c in SIGLIP_CONCATS:
        if c.hf[0].startswith("head.") and not cfg.use_head:
            continue
        layers = [str(i) for i in range(cfg.num_hidden_layers)] if "{}" in c.hf[0] else [""]
        for layer in layers:
            out.append((c, [k.format(layer) for k in c.hf], [k.format(layer) for k in c.timm]))
    return out


def siglip_hf_to_timm(
    state: Mapping[str, Tensor], cfg: SiglipConfig, *, source: str = "checkpoint"
) -> dict[str, Tensor]:
    """Convert an HF `SiglipVisionModel` state dict (keys without a prefix) to timm names.

    Args:
        state: HF tensors, e.g. `embeddings.patch_embedding.weight`.
        cfg: The tower's config (decides depth and the head).
        source: Name of the file or prefix, for error messages.

    Returns:
        State dict for `build_siglip_tower(cfg)`.

    Raises:
        CheckpointError: a key is missing or unknown, naming it.
    """
    remaining = dict(state)
    out: dict[str, Tensor] = {}
    try:
        for hf_key, tm_key in siglip_key_pairs(cfg):
            t = remaining.pop(hf_key)
            out[tm_key] = t.unsqueeze(0) if tm_key in _RESHAPE else t
        for c, hf_keys, tm_keys in siglip_concats(cfg):
            out.update(zip(tm_keys, c.to_timm([remaining.pop(k) for k in hf_keys], cfg.hidden_size)))
    except KeyError as e:
        raise CheckpointError(f"{source}: missing vision tower key {e.args[0]!r}") from None
    if remaining:
        raise CheckpointError(f"{source}: unknown vision tower key(s) {sorted(remaining)[:5]}")
    return out


def siglip_timm_to_hf(state: Mapping[str, Tensor], cfg: SiglipConfig) -> dict[str, Tensor]:
    """The reverse of `siglip_hf_to_timm`: timm names -> HF names (unprefixed)."""
    remaining = dict(state)
    out: dict[str, Tensor] = {}
    try:
        for hf_key, tm_key in siglip_key_pairs(cfg):
            t = remaining.pop(tm_key)
            out[hf_key] = t.squeeze(0) if tm_key in _RESHAPE else t
        for c, hf_keys, tm_keys in siglip_concats(cfg):
            out.update(zip(hf_keys, c.to_hf([remaining.pop(k) for k in tm_keys], cfg.hidden_size)))
    except KeyError as e:
        raise CheckpointError(f"vision tower is missing parameter {e.args[0]!r}") from None
    if remaining:
        raise CheckpointError(f"vision tower has unmapped parameter(s) {sorted(remaining)[:5]}")
    return out
