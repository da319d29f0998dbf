"""Frame selection and Automatic Degrade Sampling: examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.vision.sampling import SampleRejected, degrade_plan, frame_count, plan_frames
from zoo.vision.tiling import num_tiles

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_plan_frames_examples():
    p = plan_frames(300, 30.0)  # 10 s at 2 fps -> 20 frames, corner aligned
    assert len(p) == 20 and p.indices[0] == 0 and p.indices[-1] == 299 and p.fps == pytest.approx(2.0)
    assert p.timestamps[1] == pytest.approx(p.indices[1] / 30.0)
    assert plan_frames(3, 30.0).indices == (0, 1, 2)  # shorter than the minimum: every frame
    assert len(plan_frames(100_000, 25.0, max_frames=512)) == 512
    assert len(plan_frames(50, 25.0, min_frames=8)) == 8  # 2 s would give 4: raised to the minimum
    clip = plan_frames(1000, 10.0, start=20.0, end=29.95)  # frames 200..299
    assert clip.indices[0] == 200 and clip.indices[-1] == 299 and len(clip) == 20
    with pytest.raises(ValueError, match="holds no frame"):
        plan_frames(100, 10.0, start=50.0)


@FAST
@given(
    total=st.integers(1, 5000),
    fps=st.floats(1.0, 60.0),
    target=st.floats(0.1, 8.0),
    lo=st.integers(1, 16),
    extra=st.integers(0, 600),
    clip=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_plan_frames_properties(total, fps, target, lo, extra, clip):
    hi = lo + extra
    dur = total / fps
    start, end = sorted(clip)
    start, end = start * dur, max(end * dur, start * dur + 1.5 / fps)
    try:
        p = plan_frames(total, fps, target_fps=target, min_frames=lo, max_frames=hi, start=start, end=end)
    except ValueError:
        return  # clip between two frames
    idx = p.indices
    assert all(b > a for a, b in zip(idx, idx[1:]))
    assert 0 <= idx[0] and idx[-1] < total
    assert idx[0] / fps >= start - 1e-6 and idx[-1] / fps <= end + 1e-6
    clip_frames = sum(1 for k in range(total) if start - 1e-9 <= k / fps <= end + 1e-9)
    assert len(p) <= max(hi, 1) and len(p) <= clip_frames
    if clip_frames > lo + 1 and hi >= lo + 1:
        assert len(p) % 2 == 0 and len(p) >= lo


def test_degrade_plan_examples():
    # Plenty of room: 12-tile cap, all 2-fps frames.
    p = degrade_plan(100, [(1920, 1080)], [(3000, 25.0)], 200_000)
    assert p.max_tiles == 12 and p.frames == (240,) and p.image_tiles == (9,)
    # Tight: frames shrink first, then the image drops to one tile.
    p = degrade_plan(100, [(1920, 1080)], [(3000, 25.0)], 40_000)
    assert p.max_tiles == 1 and p.frames == (154,) and p.total_tokens <= 40_000
    # Frames fit at their ceiling; the image tiles degrade 12 -> 4.
    p = degrade_plan(100, [(1920, 1080)], [(3000, 25.0)], 100 + 240 * 256 + 5 * 256)
    assert p.frames == (240,) and p.max_tiles == 4 and p.image_tiles == (4 + 1,)
    with pytest.raises(SampleRejected, match="minimum frames"):
        degrade_plan(100, [], [(3000, 25.0)], 100 + 7 * 256)
    with pytest.raises(SampleRejected, match="text of 5000 tokens exceeds"):
        degrade_plan(5000, [], [], 4096)


images_st = st.lists(st.tuples(st.integers(1, 4000), st.integers(1, 4000)), max_size=3)
videos_st = st.lists(st.tuples(st.integers(1, 4000), st.sampled_from([10.0, 24.0, 30.0])), max_size=2)


@FAST
@given(
    text=st.integers(0, 3000),
    images=images_st,
    videos=videos_st,
    max_len=st.integers(256, 60_000),
    overhead=st.integers(0, 12),
)
def test_degrade_plan_properties(text, images, videos, max_len, overhead):
    kw = {"min_frames": 8, "max_frames": 128, "image_overhead": overhead, "frame_overhead": overhead}
    ceilings = [frame_count(t, f, min_frames=8, max_frames=128) for t, f in videos]
    try:
        p = degrade_plan(text, images, videos, max_len, **kw)
    except SampleRejected as e:
        # Rejected only when even the minimum cannot fit.
        floor = sum(min(8, c) for c in ceilings) * (256 + overhead) + len(images) * (256 + overhead)
        assert text + floor > max_len, str(e)
        return
    assert p.text_tokens == text  # text is never truncated
    assert p.total_tokens <= max_len
    for n, c in zip(p.frames, ceilings):
        assert min(8, c) <= n <= c
    tiles = [num_tiles(w, h, max_tiles=p.max_tiles) for w, h in images]
    assert list(p.image_tiles) == tiles
    assert p.visual_tokens == sum(p.frames) * (256 + overhead) + sum(t * 256 + overhead for t in tiles)
    # Tiling degrades in the stated order: the next larger cap would not have fit.
    options = (12, 8, 6, 4, 2, 1)
    i = options.index(p.max_tiles)
    if i > 0 and images:
        bigger = sum(num_tiles(w, h, max_tiles=options[i - 1]) * 256 + overhead for w, h in images)
        assert text + sum(p.frames) * (256 + overhead) + bigger > max_len
    # Temporal degradation comes first: frames below their ceiling leave the images at one tile.
    if images and any(n < c for n, c in zip(p.frames, ceilings)):
        assert p.max_tiles == 1


@FAST
@given(
    text=st.integers(0, 500),
    videos=st.lists(st.tuples(st.integers(1, 4000), st.sampled_from([10.0, 30.0])), min_size=1, max_size=2),
    a=st.integers(2000, 40_000),
    b=st.integers(0, 20_000),
)
def test_more_budget_never_means_fewer_frames(text, videos, a, b):
    try:
        small = degrade_plan(text, [], videos, a)
    except SampleRejected:
        return
    large = degrade_plan(text, [], videos, a + b)
    assert all(x <= y for x, y in zip(small.frames, large.frames))
