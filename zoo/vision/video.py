"""Reading selected video frames: decord (random access with `get_batch`) or PyAV (seek + decode forward).

Only the frames a `FramePlan` selects are converted and held, a chunk at a time, so sampling 512 frames from an
hour-long 1080p video never materialises the whole video: decord decodes from the nearest keyframe per request, and
the PyAV path seeks to the keyframe before a far-away target instead of decoding every frame in between.

Errors (missing file, undecodable container, no video stream, zero frames, out-of-range index) raise `VideoError`
naming the file.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Protocol

import numpy as np

from zoo.errors import ZooError

Backend = Literal["auto", "decord", "pyav"]


class VideoError(ZooError):
    """A video file that is missing, unreadable, empty, or asked for frames it does not have."""


@dataclass(frozen=True)
class VideoInfo:
    """Stream properties of a video file.

    Attributes:
        path: The file.
        num_frames: Frames in the stream.
        fps: Average frame rate.
        width: Frame width in pixels.
        height: Frame height in pixels.
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


class VideoReader(Protocol):
    """What both backends provide."""

    info: VideoInfo

    def read(self, indices: Sequence[int], *, chunk: int = 32) -> Iterator[np.ndarray]:
        """Decode the given frames in order, yielding uint8 arrays of shape (n <= chunk, H, W, 3)."""
        ...

    def close(self) -> None: ...


def _check_indices(info: VideoInfo, indices: Sequence[int]) -> list[int]:
    idx = [int(i) for i in indices]
    if any(b <= a for a, b in zip(idx, idx[1:])):
        raise ValueError(f"{info.path}: frame indices must be strictly increasing")
    if idx and (idx[0] < 0 or idx[-1] >= info.num_frames):
        bad = idx[0] if idx[0] < 0 else idx[-1]
        raise VideoError(f"{info.path}: frame index {bad} out of range (video has {info.num_frames} frames)")
    return idx


def _valid(path: str, num_frames: int, fps: float, width: int, height: int) -> VideoInfo:
    if num_frames <= 0:
        raise VideoError(f"{path}: video stream has no frames")
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise VideoError(f"{path}: video stream reports no usable frame rate ({fps})")
    return VideoInfo(path=path, num_frames=num_frames, fps=float(fps), width=width, height=height)


# ---------------------------------------------------------------------------------------------------------------------
# decord
# ---------------------------------------------------------------------------------------------------------------------


class DecordReader:
    """decord backend: `get_batch` fetches exactly the requested frames (num_threads 0 = decord's automatic choice)."""

    def __init__(self, path: str, num_threads: int = 0) -> None:
        import decord

        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as e:  # decord raises its own DECORDError (and RuntimeError) for broken files
            raise VideoError(f"{path}: cannot open video with decord: {e}".splitlines()[0]) from e
        height, width = self._vr[0].shape[:2] if len(self._vr) else (0, 0)
        self.info = _valid(path, len(self._vr), self._vr.get_avg_fps(), width, height)

    def read(self, indices: Sequence[int], *, chunk: int = 32) -> Iterator[np.ndarray]:
        idx = _check_indices(self.info, indices)
        for start in range(0, len(idx), chunk):
            try:
                yield self._vr.get_batch(idx[start : start + chunk]).asnumpy()
            except Exception as e:
                raise VideoError(f"{self.info.path}: decoding frames failed: {e}".splitlines()[0]) from e

    def close(self) -> None:
        self._vr = None


# ---------------------------------------------------------------------------------------------------------------------
# PyAV
# ---------------------------------------------------------------------------------------------------------------------


class PyAVReader:
    """PyAV backend: decode forward from the current position, seeking to a keyframe across long gaps.

    Frame k is identified by its presentation time, k = round((pts - start) * time_base * fps), which holds for the
    constant-frame-rate files this zoo samples from. `frames_decoded` counts decoded frames (tests and benchmarks use
    it to show that sparse sampling does not decode the whole video).
    """

    # Seek instead of decoding forward when the next wanted frame is this many frames ahead.
    SEEK_GAP = 48

    def __init__(self, path: str) -> None:
        import av

        try:
            self._container = av.open(path)
        except Exception as e:  # av.error.* (InvalidDataError, FileNotFoundError, ...)
            raise VideoError(f"{path}: cannot open video with PyAV: {e}") from e
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{path}: file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        num_frames = stream.frames or self._count_packets()
        self._stream = stream
        self._start = stream.start_time or 0
        self._tb = stream.time_base or Fraction(1, 1)
        self.frames_decoded = 0
        self.info = _valid(path, num_frames, fps, stream.codec_context.width, stream.codec_context.height)

    def _count_packets(self) -> int:
        """Frame count from demuxing alone (no decoding), for containers that do not store it."""
        n = sum(1 for p in self._container.demux(video=0) if p.size > 0)
        self._container.seek(0)
        return n

    def _index(self, frame) -> int:
        return round(float((frame.pts - self._start) * self._tb) * self.info.fps)

    def _seek(self, target: int) -> None:
        pts = self._start + int(target / self.info.fps / self._tb)
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)

    def read(self, indices: Sequence[int], *, chunk: int = 32) -> Iterator[np.ndarray]:
        idx = _check_indices(self.info, indices)
        if not idx:
            return
        out: list[np.ndarray] = []
        want = 0  # position in idx of the next frame to return
        self._seek(idx[0])
        try:
            while want < len(idx):
                found = False
                for frame in self._container.decode(self._stream):
                    self.frames_decoded += 1
                    k = self._index(frame)
                    if k < idx[want]:
                        continue
                    # A frame at or past the target: take it (k > target only if the stream skips indices).
                    out.append(frame.to_ndarray(format="rgb24"))
                    want += 1
                    found = True
                    if len(out) == chunk:
                        yield np.stack(out)
                        out = []
                    if want == len(idx):
                        break
                    if idx[want] - k > self.SEEK_GAP:
                        self._seek(idx[want])
                        break
                else:
                    if not found:
                        raise VideoError(
                            f"{self.info.path}: stream ended before frame {idx[want]} "
                            f"(container reports {self.info.num_frames} frames)"
                        )
                    # The stream ended right after the last frame we found: the rest is missing.
                    if want < len(idx):
                        raise VideoError(f"{self.info.path}: stream ended before frame {idx[want]}")
        except VideoError:
            raise
        except Exception as e:
            raise VideoError(f"{self.info.path}: decoding failed: {e}") from e
        if out:
            yield np.stack(out)

    def close(self) -> None:
        self._container.close()


# ---------------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------------


def available_backends() -> list[str]:
    """Installed backends, preferred first."""
    return [name for name, mod in (("decord", "decord"), ("pyav", "av")) if importlib.util.find_spec(mod)]


def open_video(path: str | os.PathLike, backend: Backend = "auto") -> VideoReader:
    """Open a video for frame-accurate sparse reading.

    Args:
        path: Video file.
        backend: "decord", "pyav", or "auto" (decord when installed, else PyAV).

    Returns:
        A reader with `info` (frames, fps, size) and `read(indices)`.

    Raises:
        VideoError: the file is missing, unreadable, or has no frames; or no backend is installed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such video file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: file is empty")
    backends = available_backends()
    if backend == "auto":
        if not backends:
            raise VideoError("no video backend installed: pip install 'nemotron-zoo[video]' (decord or av)")
        backend = backends[0]  # type: ignore[assignment]
    if backend == "decord":
        if "decord" not in backends:
            raise VideoError("backend 'decord' requested but decord is not installed")
        return DecordReader(path)
    if backend == "pyav":
        if "pyav" not in backends:
            raise VideoError("backend 'pyav' requested but av is not installed")
        return PyAVReader(path)
    raise ValueError(f"unknown video backend {backend!r}; use 'auto', 'decord' or 'pyav'")


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: Backend = "auto") -> np.ndarray:
    """Read the given frames at once: uint8 (n, H, W, 3). For long selections prefer `open_video(...).read`."""
    reader = open_video(path, backend)
    try:
        chunks = list(reader.read(indices))
    finally:
        reader.close()
    info = reader.info
    return np.concatenate(chunks) if chunks else np.zeros((0, info.height, info.width, 3), np.uint8)
