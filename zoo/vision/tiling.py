"""Image Area Preservation (IAP) tiling for Eagle 2.5.

Paper: "Eagle 2.5: Boosting Long-Context Post-Training for Frontier VLMs" (arXiv 2504.15271); official code
NVlabs/Eagle (`Eagle2_5`) and the `nvidia/Eagle2.5-8B` image processor.

An image of W x H pixels is cut into a grid of `cols x rows` square tiles of `tile` pixels, chosen among all grids
with `min_tiles <= cols * rows <= max_tiles` by

    score(c, r) = min(c * r * tile**2 / (W * H), 0.6) * min(rt / ro, ro / rt),   rt = c / r,  ro = W / H

The area term saturates at 0.6: once the tiled canvas keeps 60% of the original pixels, only aspect fidelity
matters (so small images pick the grid with the best aspect match and never get blown up for nothing). Candidates
are visited in ascending tile count and the first strictly better score wins, so ties go to fewer tiles. Within one
tile count the visiting order is the one the released checkpoints were trained with (see `candidate_grids`).

The image is then resized (no padding) to (c * tile) x (r * tile), cut row-major, and a thumbnail (the whole image
resized to one tile) is appended when there is more than one tile.
"""

from __future__ import annotations

from functools import cache

from PIL import Image

from zoo.errors import ZooError

# Pixel count above which we refuse an image: far beyond any real photo or scan, and a guard against
# decompression bombs reaching the resize (which would allocate W*H*3 bytes per intermediate).
MAX_PIXELS = 1 << 28
# The area term's saturation point: tiling that keeps at least this fraction of the pixels is "enough".
AREA_CAP = 0.6


class ImageSizeError(ZooError, ValueError):
    """An image with a zero, negative or absurdly large size."""


@cache
def candidate_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """All (cols, rows) grids with `min_tiles <= cols * rows <= max_tiles`, in the order they are scored.

    Sorted by tile count. Within one count the order is that of a Python set of the pairs built as n = min..max,
    c, r in 1..n (the construction of the released Eagle processor); tuple hashing of small ints is fixed in CPython,
    so this order is deterministic. It only matters for exact ties between two grids of the same count (e.g. 1x2 vs
    2x1 for a huge square image when max_tiles=2).
    """
    if min_tiles < 1 or max_tiles < min_tiles:
        raise ValueError(f"need 1 <= min_tiles <= max_tiles, got min_tiles={min_tiles}, max_tiles={max_tiles}")
    grids = {
        (c, r)
        for n in range(min_tiles, max_tiles + 1)
        for c in range(1, n + 1)
        for r in range(1, n + 1)
        if min_tiles <= c * r <= max_tiles
    }
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


def grid_score(cols: int, rows: int, width: int, height: int, tile: int) -> float:
    """The IAP score of one grid for a W x H image (higher is better, at most 0.6)."""
    area = min(cols * rows * tile * tile / (width * height), AREA_CAP)
    target, original = cols / rows, width / height
    return area * min(target / original, original / target)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageSizeError(f"image has size {width}x{height}; both sides must be positive")
    if width * height > MAX_PIXELS:
        raise ImageSizeError(f"image of {width}x{height} pixels exceeds the limit of {MAX_PIXELS} pixels")


def plan_tiles(width: int, height: int, *, tile: int = 448, min_tiles: int = 1, max_tiles: int = 12) -> tuple[int, int]:
    """Choose the tiling grid for an image by the Image Area Preservation score.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.
        tile: Side of one square tile in pixels.
        min_tiles: Smallest allowed number of tiles.
        max_tiles: Largest allowed number of tiles.

    Returns:
        (cols, rows) of the chosen grid.

    Raises:
        ImageSizeError: a side is not positive or the image exceeds MAX_PIXELS.
    """
    _check_size(width, height)
    best, best_score = (1, 1), float("-inf")
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        score = grid_score(cols, rows, width, height, tile)
        if score > best_score:  # strictly better only: ties keep the earlier (fewer-tile) grid
            best, best_score = (cols, rows), score
    return best


def num_tiles(
    width: int,
    height: int,
    *,
    tile: int = 448,
    min_tiles: int = 1,
    max_tiles: int = 12,
    use_thumbnail: bool = True,
) -> int:
    """Number of tiles `tile_image` produces for a W x H image, thumbnail included (no pixels touched)."""
    cols, rows = plan_tiles(width, height, tile=tile, min_tiles=min_tiles, max_tiles=max_tiles)
    return cols * rows + int(use_thumbnail and cols * rows > 1)


def tile_image(
    image: Image.Image,
    *,
    tile: int = 448,
    min_tiles: int = 1,
    max_tiles: int = 12,
    use_thumbnail: bool = True,
    resample: int = Image.Resampling.BICUBIC,
) -> list[Image.Image]:
    """Cut an image into IAP tiles.

    Args:
        image: Any PIL image; converted to RGB first.
        tile: Side of one square tile in pixels.
        min_tiles: Smallest allowed number of tiles.
        max_tiles: Largest allowed number of tiles.
        use_thumbnail: Append the whole image resized to one tile when the grid has more than one tile.
        resample: PIL resampling filter (the checkpoints' processors use 3 = bicubic).

    Returns:
        cols * rows tiles of tile x tile pixels, row-major (left to right, top to bottom), then the thumbnail if any.
    """
    width, height = image.size
    cols, rows = plan_tiles(width, height, tile=tile, min_tiles=min_tiles, max_tiles=max_tiles)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    # Resize the whole image to the grid canvas (aspect may change slightly; no padding, as upstream).
    canvas = rgb.resize((cols * tile, rows * tile), resample=resample)
    tiles = [
        canvas.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(rows) for c in range(cols)
    ]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(rgb.resize((tile, tile), resample=resample))
    return tiles
