"""Video frame selection and Automatic Degrade Sampling (ADS) for Eagle 2.5.

Paper: "Eagle 2.5: Boosting Long-Context Post-Training for Frontier VLMs" (arXiv 2504.15271); frame rules follow the
`nvidia/Eagle2.5-8B` inference processor (target 2 fps, even frame counts, uniform "corner-aligned" indices
round(linspace(0, T - 1, n))) and NVlabs/Eagle `data_prepare.py` (clip start/end, timestamp of frame k = k / fps).

ADS fits a sample into a token budget without ever truncating its text:

1. visual budget = max_len - text tokens; each still image is reserved one tile;
2. temporal degradation first: frames per video are capped (starting from the 2 fps count) until all frames fit;
   a video that cannot keep its minimum number of frames makes the whole sample rejected;
3. tiling degradation second: the IAP tile cap for still images is the largest of (12, 8, 6, 4, 2, 1) whose tiles
   fit in what the frames left.

Deviation, documented: the paper counts 256 tokens per tile or frame and leaves the `<img>`/`</img>`/"Frame k"
wrapper text unassigned (UNVERIFIED); here that wrapper is charged to the visual side through `image_overhead` and
`frame_overhead` (default 0 = the paper's accounting), so that a processor using the plan provably stays in budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from zoo.errors import ZooError
from zoo.vision.tiling import num_tiles

# Tiling caps that ADS tries, best first (the paper's t in {12, 8, 6, 4, 2, 1}).
TILE_OPTIONS: tuple[int, ...] = (12, 8, 6, 4, 2, 1)


class SampleRejected(ZooError):
    """ADS cannot fit a sample into the budget (text too long, or a video below its minimum frames)."""


# ---------------------------------------------------------------------------------------------------------------------
# Frame selection
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePlan:
    """Which frames of a video to read.

    Attributes:
        indices: Frame indices into the whole video, strictly increasing.
        timestamps: Presentation time of each selected frame in seconds (index / native fps).
        fps: Sampling rate reported to the model: frames taken per second of the clip.
    """

    indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    fps: float

    def __len__(self) -> int:
        return len(self.indices)


def clip_range(total_frames: int, native_fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """First and last frame index (inclusive) shown within [start, end] seconds."""
    first = 0 if start is None else math.ceil(start * native_fps - 1e-9)
    last = total_frames - 1 if end is None else math.floor(end * native_fps + 1e-9)
    first, last = max(first, 0), min(last, total_frames - 1)
    if first > last:
        raise ValueError(f"clip [{start}, {end}] s holds no frame of a {total_frames}-frame video at {native_fps} fps")
    return first, last


def frame_count(
    clip_frames: int,
    native_fps: float,
    *,
    target_fps: float = 2.0,
    min_frames: int = 4,
    max_frames: int = 256,
    frame_factor: int = 2,
) -> int:
    """How many frames to sample from a clip of `clip_frames` frames.

    The count is duration * target_fps rounded to a multiple of `frame_factor`, clamped to [min_frames, max_frames]
    (both rounded inward to multiples of `frame_factor`) and to the frames the clip has. When the clip or
    `max_frames` is at or below the rounded-up minimum, that count is taken as is (possibly odd).
    """
    if clip_frames <= 0:
        raise ValueError(f"clip has {clip_frames} frames")
    if native_fps <= 0:
        raise ValueError(f"native fps must be positive, got {native_fps}")
    if frame_factor < 1 or min_frames < 1 or max_frames < min_frames:
        raise ValueError(
            f"need 1 <= min_frames <= max_frames and frame_factor >= 1, got {min_frames}, {max_frames}, {frame_factor}"
        )
    lo = frame_factor * math.ceil(min_frames / frame_factor)
    cap = min(max_frames, clip_frames)
    if cap <= lo:  # a clip (or ceiling) at or below the rounded-up minimum: take what it allows
        return cap
    hi = frame_factor * (cap // frame_factor)  # >= lo, since lo is a multiple of frame_factor below cap
    wanted = frame_factor * round(clip_frames / native_fps * target_fps / frame_factor)
    return max(lo, min(hi, wanted))


def plan_frames(
    total_frames: int,
    native_fps: float,
    *,
    target_fps: float = 2.0,
    min_frames: int = 4,
    max_frames: int = 256,
    frame_factor: int = 2,
    start: float | None = None,
    end: float | None = None,
) -> FramePlan:
    """Select frames uniformly over a video or a clip of it.

    Args:
        total_frames: Frames in the whole video.
        native_fps: The video's frame rate.
        target_fps: Sampling rate aimed for before clamping.
        min_frames: Fewest frames to take (a shorter clip gives all it has).
        max_frames: Most frames to take.
        frame_factor: Counts are multiples of this (2 upstream) whenever the clip allows.
        start: Clip start in seconds (inclusive), or None for the beginning.
        end: Clip end in seconds (inclusive), or None for the end.

    Returns:
        The FramePlan: indices round(linspace(first, last, n)), their timestamps and the sampled fps.
    """
    if total_frames <= 0:
        raise ValueError(f"video has {total_frames} frames")
    first, last = clip_range(total_frames, native_fps, start, end)
    clip = last - first + 1
    n = frame_count(
        clip, native_fps, target_fps=target_fps, min_frames=min_frames, max_frames=max_frames, frame_factor=frame_factor
    )
    # n <= clip means the linspace step is >= 1, so the rounded indices are distinct.
    step = (clip - 1) / (n - 1) if n > 1 else 0.0
    indices = tuple(first + round(i * step) for i in range(n)) if n > 1 else (first + (clip - 1) // 2,)
    return FramePlan(
        indices=indices,
        timestamps=tuple(i / native_fps for i in indices),
        fps=n / (clip / native_fps),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Automatic Degrade Sampling
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DegradePlan:
    """What survives of a sample under a token budget.

    Attributes:
        max_tiles: IAP tile cap for every still image of the sample.
        image_tiles: Tiles per image under that cap (thumbnail included).
        frames: Frames per video (pass as `max_frames` to `plan_frames` to get the indices).
        text_tokens: Text tokens, kept whole.
        visual_tokens: Tokens of all tiles and frames including their wrapper overhead.
    """

    max_tiles: int
    image_tiles: tuple[int, ...]
    frames: tuple[int, ...]
    text_tokens: int
    visual_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.text_tokens + self.visual_tokens


def degrade_plan(
    text_tokens: int,
    images: Sequence[tuple[int, int]],
    videos: Sequence[tuple[int, float]],
    max_len: int,
    *,
    tokens_per_tile: int = 256,
    tile_options: Sequence[int] = TILE_OPTIONS,
    tile: int = 448,
    min_tiles: int = 1,
    use_thumbnail: bool = True,
    target_fps: float = 2.0,
    min_frames: int = 8,
    max_frames: int = 512,
    frame_factor: int = 2,
    image_overhead: int = 0,
    frame_overhead: int = 0,
) -> DegradePlan:
    """Fit a sample into `max_len` tokens by Automatic Degrade Sampling.

    Args:
        text_tokens: Tokens of all text of the sample (every turn); never truncated.
        images: (width, height) of each still image.
        videos: (total frames, native fps) of each video.
        max_len: Token budget of the whole sample.
        tokens_per_tile: Tokens of one tile or one video frame.
        tile_options: Tile caps to try for still images, best first.
        tile: Tile side in pixels (for the IAP grid).
        min_tiles: IAP minimum tiles.
        use_thumbnail: Whether multi-tile images get a thumbnail tile.
        target_fps: Sampling rate that gives each video's frame ceiling.
        min_frames: Frames a video must keep (a video with fewer frames must keep all of them).
        max_frames: Frame ceiling per video.
        frame_factor: Frame counts are multiples of this when the video allows.
        image_overhead: Extra tokens per still image (e.g. `<img>`, `</img>`).
        frame_overhead: Extra tokens per frame (e.g. "Frame 3 sample at 1.50s: ", `<img>`, `</img>`).

    Returns:
        The DegradePlan.

    Raises:
        SampleRejected: the text alone, or the text plus minimal visuals, exceeds `max_len`.
    """
    if text_tokens > max_len:
        raise SampleRejected(f"text of {text_tokens} tokens exceeds max_len={max_len}; text is never truncated")
    options = sorted(set(tile_options), reverse=True)
    if not options or options[-1] < min_tiles:
        raise ValueError(f"tile_options {tuple(tile_options)} must contain a cap >= min_tiles={min_tiles}")
    budget = max_len - text_tokens
    frame_cost = tokens_per_tile + frame_overhead
    # Images are reserved the cheapest tiling during the temporal step (the paper's one tile per image).
    floor_cap = options[-1]
    reserve = sum(
        _image_cost(w, h, floor_cap, tile, min_tiles, use_thumbnail, tokens_per_tile, image_overhead) for w, h in images
    )
    if reserve > budget:
        raise SampleRejected(
            f"{len(images)} image(s) need {reserve} tokens at {floor_cap} tile(s) each, only "
            f"{budget} left after {text_tokens} text tokens (max_len={max_len})"
        )

    # --- temporal degradation: one common frame cap k for all videos, the largest that fits ---
    ceilings = [
        frame_count(
            t, fps, target_fps=target_fps, min_frames=min_frames, max_frames=max_frames, frame_factor=frame_factor
        )
        for t, fps in videos
    ]
    floors = [min(min_frames, c) for c in ceilings]
    frames: list[int] = []
    if videos:
        left = budget - reserve
        for k in range(max(ceilings), 0, -1):
            counts = [_capped(c, k, frame_factor) for c in ceilings]
            if any(n < f for n, f in zip(counts, floors)):
                break
            if sum(counts) * frame_cost <= left:
                frames = counts
                break
        if not frames:
            need = sum(floors) * frame_cost
            raise SampleRejected(
                f"video(s) need at least {need} tokens for their minimum frames {floors}, only "
                f"{left} left after {text_tokens} text tokens and {reserve} image tokens "
                f"(max_len={max_len})"
            )
    frame_tokens = sum(frames) * frame_cost

    # --- tiling degradation: the largest tile cap whose tiles fit in what the frames left ---
    left = budget - frame_tokens
    for cap in options:
        costs = [
            _image_cost(w, h, cap, tile, min_tiles, use_thumbnail, tokens_per_tile, image_overhead) for w, h in images
        ]
        if sum(costs) <= left:
            tiles = tuple((c - image_overhead) // tokens_per_tile for c in costs)
            return DegradePlan(
                max_tiles=cap,
                image_tiles=tiles,
                frames=tuple(frames),
                text_tokens=text_tokens,
                visual_tokens=frame_tokens + sum(costs),
            )
    raise AssertionError("unreachable: the smallest cap was reserved above")


def _capped(ceiling: int, cap: int, frame_factor: int) -> int:
    """Frames of a video whose unconstrained count is `ceiling` under a common cap, kept a multiple of frame_factor."""
    if ceiling <= cap:
        return ceiling
    rounded = frame_factor * (cap // frame_factor)
    return rounded if rounded > 0 else cap


def _image_cost(
    width: int,
    height: int,
    cap: int,
    tile: int,
    min_tiles: int,
    use_thumbnail: bool,
    tokens_per_tile: int,
    overhead: int,
) -> int:
    n = num_tiles(
        width, height, tile=tile, min_tiles=min_tiles, max_tiles=max(cap, min_tiles), use_thumbnail=use_thumbnail
    )
    return n * tokens_per_tile + overhead
