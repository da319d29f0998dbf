"""IAP tiling: hand-derived grids (ties, extreme aspect ratios, tiny images), tiles and thumbnail, errors."""

from __future__ import annotations

import pytest
from PIL import Image

from zoo.vision.tiling import ImageSizeError, candidate_grids, grid_score, num_tiles, plan_tiles, tile_image

# (width, height, kwargs, expected grid, why). score = min(c*r*448^2 / (W*H), 0.6) * min(rt/ro, ro/rt).
TABLE = [
    (448, 448, {}, (1, 1), "1x1 already scores the maximum 0.6 (area capped, exact aspect)"),
    (896, 448, {}, (2, 1), "2x1 and 4x2 both score 0.6: the tie goes to fewer tiles"),
    (10, 10, {}, (1, 1), "tiny image: every area term is capped, aspect decides"),
    (20, 10, {}, (2, 1), "tiny 2:1 image: exact aspect wins without any upscaling penalty"),
    (10000, 10, {}, (12, 1), "extreme 1000:1 panorama: the widest allowed grid"),
    (10, 10000, {}, (1, 12), "extreme 1:1000 strip: the tallest allowed grid"),
    (1344, 448, {}, (3, 1), "exact 3:1"),
    (448, 1344, {}, (1, 3), "exact 1:3"),
    (1920, 1080, {}, (4, 2), "4x2 = 0.6 * 0.889 = 0.533 beats 3x2 (0.580 * 0.844 = 0.490) and 4x3 (0.45)"),
    (800, 600, {}, (4, 3), "4x3 is exact 4:3 with the area capped; 3x2 only 0.533"),
    (896, 896, {"max_tiles": 3}, (1, 1), "1x1, 1x2, 2x1 all score 0.25 exactly: the first (fewest) stays"),
    (4480, 4480, {"max_tiles": 2}, (1, 1), "huge square, cap 2: 1x1 = 0.01 ties 1x2/2x1 = 0.02 * 0.5"),
    (448, 448, {"min_tiles": 2, "max_tiles": 4}, (2, 2), "min_tiles 2 excludes 1x1; 2x2 keeps the aspect"),
    (150, 70, {"tile": 56, "max_tiles": 4}, (2, 1), "2x1 = 0.597 * 0.933 = 0.557 > 3x1 = 0.6 * 0.714 = 0.43"),
]


@pytest.mark.parametrize(("w", "h", "kw", "grid", "why"), TABLE, ids=[f"{t[0]}x{t[1]}" for t in TABLE])
def test_plan_tiles_table(w, h, kw, grid, why):
    assert plan_tiles(w, h, **kw) == grid, why


def test_candidates_ascend_in_tile_count_and_cover_the_range():
    grids = candidate_grids(1, 12)
    counts = [c * r for c, r in grids]
    assert counts == sorted(counts)
    assert set(grids) == {(c, r) for c in range(1, 13) for r in range(1, 13) if c * r <= 12}
    assert len(grids) == len(set(grids))


def test_chosen_grid_has_the_best_score_and_the_fewest_tiles_among_equals():
    for w, h in [(1000, 300), (333, 777), (2048, 1536), (51, 400), (4000, 900)]:
        c, r = plan_tiles(w, h)
        best = max(grid_score(a, b, w, h, 448) for a, b in candidate_grids(1, 12))
        assert grid_score(c, r, w, h, 448) == best
        assert all(a * b >= c * r for a, b in candidate_grids(1, 12) if grid_score(a, b, w, h, 448) == best)


def test_tile_image_row_major_with_thumbnail():
    img = Image.new("RGB", (896, 448))
    img.paste((255, 0, 0), (0, 0, 448, 448))
    img.paste((0, 0, 255), (448, 0, 896, 448))
    tiles = tile_image(img)
    assert len(tiles) == 3 == num_tiles(896, 448)
    assert all(t.size == (448, 448) for t in tiles)
    assert tiles[0].getpixel((224, 224)) == (255, 0, 0)
    assert tiles[1].getpixel((224, 224)) == (0, 0, 255)
    thumb = tiles[2]  # the whole image squeezed into one tile: red left, blue right
    assert thumb.getpixel((50, 224)) == (255, 0, 0) and thumb.getpixel((400, 224)) == (0, 0, 255)


def test_tile_image_single_tile_has_no_thumbnail_and_converts_mode():
    tiles = tile_image(Image.new("L", (300, 280), 7))
    assert len(tiles) == 1 and tiles[0].mode == "RGB" and tiles[0].size == (448, 448)
    grid = tile_image(Image.new("RGB", (2000, 500)), use_thumbnail=False)
    assert len(grid) == 4 * 1


@pytest.mark.parametrize(("w", "h"), [(0, 10), (10, 0), (-5, 5), (1 << 15, 1 << 14)])
def test_bad_sizes_raise(w, h):
    with pytest.raises(ImageSizeError, match=f"{w}x{h}"):
        plan_tiles(w, h)


def test_bad_tile_range_raises():
    with pytest.raises(ValueError, match="min_tiles"):
        plan_tiles(100, 100, min_tiles=3, max_tiles=2)
