"""Eagle's vision-to-language projector: pixel shuffle (space-to-depth, ratio 0.5) followed by `mlp1`.

Papers: InternVL 1.5 (arXiv 2404.16821) introduced the pixel-shuffle + MLP projector; Eagle 2 / 2.5 (arXiv
2501.14818, 2504.15271) keep it. Official code: `modeling_eagle2_5_vl.py` in `nvidia/Eagle2.5-8B`.

Element order matters for weight compatibility: the released projector was trained on the output of InternVL's
view/permute sequence, which makes output token (R, C) the concatenation of the input patches
(2R, 2C), (2R, 2C+1), (2R+1, 2C), (2R+1, 2C+1), each a full channel vector, with output tokens row-major.
`pixel_shuffle` produces exactly that order with one reshape/permute (the test checks it element by element
against a transcription of the upstream sequence).
"""

from __future__ import annotations

from torch import Tensor, nn


def pixel_shuffle(x: Tensor, scale: float = 0.5) -> Tensor:
    """Merge each k x k block of patch tokens into one token, k = 1 / scale.

    Args:
        x: (n, h, w, c) patch features, rows then columns.
        scale: Downsample ratio; 1 / scale must be an integer dividing h and w.

    Returns:
        (n, h * scale, w * scale, c / scale^2) features; token (R, C) holds input patches (kR + a, kC + b)
        in the order a-major, b-minor (a, b in 0..k-1).
    """
    n, h, w, c = x.shape
    k = round(1 / scale)
    if abs(k * scale - 1) > 1e-6 or h % k or w % k:
        raise ValueError(f"pixel_shuffle: scale {scale} does not tile a {h}x{w} patch grid")
    x = x.reshape(n, h // k, k, w // k, k, c)  # (n, R, a, C, b, c)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (n, R, C, a, b, c)
    return x.reshape(n, h // k, w // k, k * k * c)


def build_mlp1(vit_hidden: int, llm_hidden: int, downsample_ratio: float = 0.5) -> nn.Sequential:
    """`mlp1`: LayerNorm(4 C) -> Linear(4 C, H) -> GELU -> Linear(H, H) (keys mlp1.0, mlp1.1, mlp1.3).

    The width in is C / ratio^2 (4 C at ratio 0.5). Exact GELU and LayerNorm eps 1e-5, as the checkpoint's module.
    """
    d_in = round(vit_hidden / (downsample_ratio * downsample_ratio))
    return nn.Sequential(
        nn.LayerNorm(d_in),
        nn.Linear(d_in, llm_hidden),
        nn.GELU(),
        nn.Linear(llm_hidden, llm_hidden),
    )


def project(features: Tensor, mlp1: nn.Module, grid: int, downsample_ratio: float = 0.5) -> Tensor:
    """Vision tower tokens -> language-model embeddings.

    Args:
        features: (n, grid * grid, C) patch features of n tiles, row-major.
        mlp1: The projector MLP.
        grid: Patches per tile side.
        downsample_ratio: Pixel-shuffle ratio.

    Returns:
        (n * tokens_per_tile, H) embeddings, tiles in order, tokens row-major within a tile.
    """
    n, p, c = features.shape
    if p != grid * grid:
        raise ValueError(f"expected {grid * grid} patch tokens per tile, got {p}")
    x = pixel_shuffle(features.reshape(n, grid, grid, c), downsample_ratio)
    x = mlp1(x.reshape(n, -1, x.shape[-1]))  # (n, tokens_per_tile, H)
    return x.reshape(-1, x.shape[-1])
