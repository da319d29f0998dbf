"""The Whisper-style audio encoder of Qwen2-Audio, with its 2x pooling and the projector into a language model.

Papers: Whisper (Radford et al., 2022, arXiv 2212.04356); Qwen2-Audio (Chu et al., 2024, arXiv 2407.10759).
Official code: openai/whisper; the Qwen2-Audio checkpoint `Qwen/Qwen2-Audio-7B(-Instruct)`.

    log-mel (b, n_mels, 2P) -> conv1 (k3) + GELU -> conv2 (k3, stride 2) + GELU -> + positions (P, d)
      -> L pre-LN transformer layers (bidirectional, padded frames masked as keys)          forward_features
      -> AvgPool1d(2, 2) over time -> LayerNorm                                             forward_head
      -> projector Linear(d, hidden)                                                        AudioProjector

Design choices:
* Module names mirror the upstream checkpoint (`conv1`, `layers.{i}.self_attn.q_proj`, `fc1`, ...), so the key map
  to `audio_tower.*` is a declarative table of identical names under a prefix.
* The input is always the full window (P = `max_source_positions` = 1500 frames after conv2 for 30 s): the
  position table has no interpolation. Shorter clips are zero-padded by the feature extractor and their padded
  frames are masked out of attention as keys, exactly as Qwen2-Audio does with its `feature_attention_mask`.
* `k_proj` has no bias (Whisper's choice, kept by the checkpoint); q/v/out do.
* The position table is a frozen buffer-like parameter (`requires_grad=False`), initialised with Whisper's sinusoids
  when built from scratch; checkpoints overwrite it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError

__all__ = [
    "WhisperEncoderConfig",
    "WhisperEncoder",
    "AudioProjector",
    "conv_output_lengths",
    "audio_token_counts",
    "ENCODER_KEYS",
    "PROJECTOR_KEYS",
]


# ---------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------

# Activations the upstream `activation_function` field may name; transformers' "gelu" is the exact erf GELU.
_ACTIVATIONS = {"gelu": lambda x: F.gelu(x), "gelu_new": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Shape of a Whisper-style audio encoder (the `audio_config` of a Qwen2-Audio config.json).

    Attributes:
        num_mel_bins: mel bands of the input features (128 for Qwen2-Audio, 80 for early Whisper).
        d_model: encoder width.
        encoder_layers: number of transformer layers.
        encoder_attention_heads: attention heads per layer.
        encoder_ffn_dim: MLP width.
        max_source_positions: frames after conv2 (1500 for 30 s); the input has twice as many mel frames.
        activation_function: MLP activation (upstream name).
        scale_embedding: multiply conv output by sqrt(d_model) (false for Qwen2-Audio).
        layer_norm_eps: LayerNorm epsilon (torch's default, as upstream).
    """

    num_mel_bins: int = 128
    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    max_source_positions: int = 1500
    activation_function: str = "gelu"
    scale_embedding: bool = False
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"audio_config.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.encoder_attention_heads:
            raise ConfigError(
                f"audio_config.d_model ({self.d_model}) must be divisible by encoder_attention_heads "
                f"({self.encoder_attention_heads})"
            )
        if self.max_source_positions <= 0 or self.max_source_positions % 2:
            # The 2x average pooling needs an even number of frames to cover the window exactly.
            raise ConfigError(
                f"audio_config.max_source_positions must be positive and even, got {self.max_source_positions}"
            )
        if self.activation_function not in _ACTIVATIONS:
            raise ConfigError(
                f"audio_config.activation_function {self.activation_function!r} is not supported "
                f"(supported: {sorted(_ACTIVATIONS)})"
            )

    @property
    def n_frames(self) -> int:
        """Mel frames the encoder takes: two per position (conv2 has stride 2)."""
        return 2 * self.max_source_positions

    @property
    def n_tokens(self) -> int:
        """Output tokens for a full window, after the 2x pooling."""
        return self.max_source_positions // 2

    @classmethod
    def from_hf(cls, audio_config: dict[str, Any]) -> WhisperEncoderConfig:
        """Build from an upstream `audio_config` dict (`qwen2_audio_encoder` or `whisper`); unknown fields ignored."""
        kwargs: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in audio_config and audio_config[name] is not None:
                kwargs[name] = audio_config[name]
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"audio_config: {e}") from e

    def to_hf(self) -> dict[str, Any]:
        """The upstream `audio_config` dict (`model_type` "qwen2_audio_encoder")."""
        d = asdict(self)
        d.pop("layer_norm_eps")  # upstream hard-codes torch's default and has no field for it
        return {"model_type": "qwen2_audio_encoder", **d}


# ---------------------------------------------------------------------------------------------------------------
# Lengths: mel frames -> conv2 frames -> pooled tokens
# ---------------------------------------------------------------------------------------------------------------


def conv_output_lengths(frame_lengths: torch.Tensor) -> torch.Tensor:
    """Valid frames after conv2 (kernel 3, stride 2, padding 1): `(L - 1) // 2 + 1`. (b,) -> (b,)."""
    return (frame_lengths - 1) // 2 + 1


def audio_token_counts(frame_lengths: torch.Tensor | int) -> torch.Tensor:
    """Valid output tokens after the 2x pooling, i.e. how many `<|AUDIO|>` positions a clip fills.

    A pooled token counts when its first frame is valid: `(a - 2) // 2 + 1` for `a` valid conv frames, as in the
    Qwen2-Audio processor. (b,) -> (b,) int64.
    """
    a = conv_output_lengths(torch.as_tensor(frame_lengths, dtype=torch.long))
    return (a - 2) // 2 + 1


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------


class EncoderAttention(nn.Module):
    """Bidirectional multi-head self-attention; `k_proj` without bias (Whisper)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend.

        Args:
            x: (b, t, d).
            key_mask: (b, t) bool, True for frames that may be attended to; None attends everywhere.

        Returns:
            (b, t, d).
        """
        b, t, d = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (b, h, t, hd)
        k = self.k_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # (b, 1, 1, t): broadcast over queries
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer: x + attn(ln(x)), then x + fc2(act(fc1(ln(x))))."""

    def __init__(self, cfg: WhisperEncoderConfig) -> None:
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.self_attn = EncoderAttention(cfg.d_model, cfg.encoder_attention_heads)
        self.final_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.d_model, cfg.encoder_ffn_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_dim, cfg.d_model)
        self.act = _ACTIVATIONS[cfg.activation_function]

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(b, t, d) -> (b, t, d)."""
        x = x + self.self_attn(self.self_attn_layer_norm(x), key_mask)
        h = self.fc2(self.act(self.fc1(self.final_layer_norm(x))))
        x = x + h
        if x.dtype == torch.float16:
            # fp16 residual streams of deep Whisper encoders overflow on loud inputs; clamp as upstream does.
            bound = torch.finfo(x.dtype).max - 1000
            x = x.clamp(-bound, bound)
        return x


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's fixed position table: sin on the first half of the channels, cos on the second. (length, channels)."""
    half = channels // 2
    inc = math.log(max_timescale) / max(half - 1, 1)
    inv = torch.exp(-inc * torch.arange(half, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------------------------------


class WhisperEncoder(nn.Module):
    """Whisper-style encoder with Qwen2-Audio's 2x pooling (module names follow the upstream checkpoint).

    Shapes: b batch, m mel bins, f = 2P mel frames, P = max_source_positions, d = d_model.
    """

    def __init__(self, cfg: WhisperEncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.d_model
        self.conv1 = nn.Conv1d(cfg.num_mel_bins, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(cfg.max_source_positions, d)
        self.embed_positions.weight.requires_grad_(False)  # frozen in Whisper and Qwen2-Audio
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.embed_scale = math.sqrt(d) if cfg.scale_embedding else 1.0

    @torch.no_grad()
    def init_weights(self, std: float = 0.02) -> None:
        """Random init for training from scratch: N(0, std) weights, zero biases, unit norms, sinusoid positions."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        cfg = self.config
        self.embed_positions.weight.copy_(sinusoids(cfg.max_source_positions, cfg.d_model))

    # -- stages ----------------------------------------------------------------------------------------------

    def _stem(self, features: torch.Tensor) -> torch.Tensor:
        """Convolutions and positions: (b, m, f) -> (b, P, d)."""
        cfg = self.config
        if features.ndim != 3 or features.shape[1] != cfg.num_mel_bins or features.shape[2] != cfg.n_frames:
            raise ValueError(
                f"audio encoder expects features (batch, {cfg.num_mel_bins}, {cfg.n_frames}), got "
                f"{tuple(features.shape)}: pad or cut clips to the full window (see zoo.audio.features.log_mel)"
            )
        x = features.to(self.conv1.weight.dtype)
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))  # (b, d, P)
        x = x.transpose(1, 2) * self.embed_scale  # (b, P, d)
        return x + self.embed_positions.weight.to(x.dtype)

    def _key_mask(self, frame_lengths: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        if frame_lengths is None:
            return None
        valid = conv_output_lengths(frame_lengths.to(device))  # (b,)
        return torch.arange(self.config.max_source_positions, device=device)[None, :] < valid[:, None]  # (b, P)

    def forward_intermediates(
        self, features: torch.Tensor, indices: list[int] | None = None, frame_lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the layers and keep the outputs of some of them.

        Args:
            features: (b, m, f) log-mel features of full windows.
            indices: layer indices whose outputs to return (negative counts from the end); None keeps all.
            frame_lengths: (b,) valid mel frames per clip; padded frames are masked as attention keys.

        Returns:
            The last layer's output (b, P, d) (before pooling and the final norm) and the chosen layers' outputs,
            each (b, P, d), in the order of `indices`.
        """
        n = len(self.layers)
        wanted = list(range(n)) if indices is None else [i % n for i in indices]
        x = self._stem(features)
        key_mask = self._key_mask(frame_lengths, x.device)
        kept: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            x = layer(x, key_mask)
            if i in wanted:
                kept[i] = x
        return x, [kept[i] for i in wanted]

    def forward_features(self, features: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Stem and layers: (b, m, f) -> (b, P, d)."""
        x = self._stem(features)
        key_mask = self._key_mask(frame_lengths, x.device)
        for layer in self.layers:
            x = layer(x, key_mask)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """2x average pooling over time then the final LayerNorm: (b, P, d) -> (b, P // 2, d)."""
        x = F.avg_pool1d(x.transpose(1, 2), kernel_size=2, stride=2).transpose(1, 2)
        return self.layer_norm(x)

    def forward(self, features: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encode full-window log-mel features.

        Args:
            features: (b, m, f) with f = 2 * max_source_positions.
            frame_lengths: (b,) valid mel frames per clip (None: all valid). Use `audio_token_counts` to know how
                many of the output tokens belong to the clip.

        Returns:
            (b, P // 2, d) audio tokens; rows beyond a clip's token count are padding.
        """
        return self.forward_head(self.forward_features(features, frame_lengths))


class AudioProjector(nn.Module):
    """Qwen2-Audio's `multi_modal_projector`: one Linear from the encoder width to the LM hidden size."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    @torch.no_grad()
    def init_weights(self, std: float = 0.02) -> None:
        """N(0, std) weight, zero bias."""
        nn.init.normal_(self.linear.weight, std=std)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_audio) -> (..., hidden)."""
        return self.linear(x)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint key tables (ours, relative to the module -> upstream, relative to its prefix); `{}` is the layer index
# ---------------------------------------------------------------------------------------------------------------

ENCODER_KEYS: dict[str, str] = {
    "conv1.weight": "conv1.weight",
    "conv1.bias": "conv1.bias",
    "conv2.weight": "conv2.weight",
    "conv2.bias": "conv2.bias",
    "embed_positions.weight": "embed_positions.weight",
    "layer_norm.weight": "layer_norm.weight",
    "layer_norm.bias": "layer_norm.bias",
    **{
        f"layers.{{}}.{name}": f"layers.{{}}.{name}"
        for name in (
            "self_attn.q_proj.weight",
            "self_attn.q_proj.bias",
            "self_attn.k_proj.weight",  # no k_proj.bias: Whisper's keys carry none
            "self_attn.v_proj.weight",
            "self_attn.v_proj.bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "self_attn_layer_norm.weight",
            "self_attn_layer_norm.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "final_layer_norm.weight",
            "final_layer_norm.bias",
        )
    },
}
"""Encoder parameters; upstream prefix `audio_tower.`."""

PROJECTOR_KEYS: dict[str, str] = {"linear.weight": "linear.weight", "linear.bias": "linear.bias"}
"""Projector parameters; upstream prefix `multi_modal_projector.`."""
