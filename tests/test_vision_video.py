"""Video reading with real files: exact planned frames from decord and PyAV, sparse reads, clear errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
from vision_videos import frame_id, write_video

from zoo.vision.sampling import plan_frames
from zoo.vision.video import VideoError, available_backends, open_video, read_frames

BACKENDS = available_backends()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "long.mp4", 1500, fps=25)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_exactly_the_planned_frames(long_video, backend):
    reader = open_video(long_video, backend)
    info = reader.info
    assert (info.num_frames, info.fps, info.width, info.height) == (1500, 25.0, 64, 48)
    plan = plan_frames(info.num_frames, info.fps)  # 60 s at 2 fps
    assert len(plan) == 120
    got = [frame_id(f) for chunk in reader.read(plan.indices, chunk=32) for f in chunk]
    reader.close()
    assert got == list(plan.indices)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_and_512_frame_sampling_in_bounded_chunks(long_video, backend):
    plan = plan_frames(1500, 25.0, target_fps=10.0, max_frames=512, start=4.0, end=59.0)
    assert len(plan) == 512 and plan.indices[0] == 100
    reader = open_video(long_video, backend)
    sizes, got = [], []
    for chunk in reader.read(plan.indices, chunk=64):
        sizes.append(len(chunk))
        got += [frame_id(f) for f in chunk]
    reader.close()
    assert got == list(plan.indices)
    assert max(sizes) == 64  # never more than one chunk of decoded frames is held


def test_pyav_sparse_sampling_does_not_decode_every_frame(long_video):
    reader = open_video(long_video, "pyav")
    idx = plan_frames(1500, 25.0, target_fps=0.2, min_frames=8, max_frames=16).indices  # 12 frames, 120 apart
    got = [frame_id(f) for chunk in reader.read(idx) for f in chunk]
    assert got == list(idx)
    assert reader.frames_decoded < 1500 // 2, reader.frames_decoded  # seeks to keyframes across the gaps
    reader.close()


def test_read_frames_convenience(long_video):
    frames = read_frames(long_video, [0, 7, 1499])
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_id(f) for f in frames] == [0, 7, 1499]


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_name_the_file(tmp_path, long_video, backend):
    with pytest.raises(VideoError, match="missing.mp4: no such video file"):
        open_video(tmp_path / "missing.mp4", backend)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4: file is empty"):
        open_video(empty, backend)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="junk.mp4"):
        open_video(junk, backend)
    reader = open_video(long_video, backend)
    with pytest.raises(VideoError, match="frame index 1500 out of range"):
        list(reader.read([10, 1500]))
    reader.close()


def test_zero_frame_video_is_rejected(tmp_path):
    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for backend in BACKENDS:
        with pytest.raises(VideoError, match="zero.mp4"):
            open_video(path, backend)
