"""Real test videos written with PyAV: frame k is a flat colour that encodes k (readable back after lossy coding)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def colour(k: int) -> np.ndarray:
    """RGB colour of frame k: 16 levels per channel (step 16, centred), so up to 4096 frames survive H.264."""
    return np.array([16 * (k % 16) + 8, 16 * ((k // 16) % 16) + 8, 16 * (k // 256) + 8], np.uint8)


def frame_id(frame: np.ndarray) -> int:
    """Inverse of `colour` on a decoded (H, W, 3) frame (mean over pixels, nearest level)."""
    m = frame.reshape(-1, 3).astype(np.float64).mean(0)
    r, g, b = (int(round((v - 8) / 16)) for v in m)
    return r + 16 * g + 256 * b


def write_video(path: Path, n: int, *, fps: int = 25, size: tuple[int, int] = (64, 48)) -> Path:
    """An H.264 mp4 of n frames whose frame k has `colour(k)`."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for k in range(n):
            img = np.broadcast_to(colour(k), (h, w, 3)).copy()
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path
