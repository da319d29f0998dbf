"""Long-video ingestion for Eagle 2.5: frame sampling + decoding + preprocessing into 448 px tiles, in frames/s.

    python -m benchmarks.vision_video [--quick] [--seconds 60] [--size 640x360]

Writes a real H.264 test video with PyAV, then for each backend (decord, PyAV) times decoding the planned frames
with the zoo reader (`open_video(...).read`, chunked) against transformers' `video_utils.load_video` with the same
indices (ratio > 1: the zoo reader is faster; "same frames" checks the arrays are identical), and the zoo's end to
end path (`plan_frames` -> chunked decode -> 448 px tiles, normalised) in frames/s. Tiling/normalisation is the same
code for both, so it is timed only once. Results: `benchmarks/results/vision_video.json`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from benchmarks._common import best_time, print_table, write_json
from zoo.vision.processor import EagleProcessor, ProcessorConfig
from zoo.vision.sampling import plan_frames
from zoo.vision.video import available_backends


def write_test_video(path: Path, seconds: int, fps: int, width: int, height: int) -> Path:
    """A moving gradient (so the codec has real work), `seconds * fps` frames."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for k in range(seconds * fps):
            img = ((x + y * 0.5 + 3 * k) % 256 * np.array([1.0, 0.6, 0.3])).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 s video, one frame budget")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="640x360")
    args = ap.parse_args(argv)
    seconds = 20 if args.quick else args.seconds
    width, height = (int(v) for v in args.size.split("x"))
    budgets = [64] if args.quick else [120, 512]  # 2 fps over 60 s, and Eagle's long-video 512 frames

    from transformers.video_utils import load_video

    proc = EagleProcessor(None, ProcessorConfig())  # 448 px tiles, mean/std 0.5, 1 tile per frame
    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_test_video(Path(tmp) / "long.mp4", seconds, args.fps, width, height)
        total = seconds * args.fps
        for n in budgets:
            plan = plan_frames(total, float(args.fps), target_fps=n / seconds, min_frames=4, max_frames=n)
            for backend in available_backends():
                # Decoding the planned frames: the zoo reader vs transformers' load_video, same indices.
                t_read = best_time(lambda b=backend, i=plan.indices: _read(path, b, i), repeats=3)
                t_hf = best_time(lambda b=backend, i=plan.indices: _hf_read(load_video, path, b, i), repeats=3)
                same = np.array_equal(
                    _read(path, backend, plan.indices), _hf_read(load_video, path, backend, plan.indices)
                )
                # End to end (sample + decode + tiles), the processor's path.
                t_e2e = best_time(lambda b=backend, n=n: _zoo(proc, path, b, n), repeats=2)
                rec = {
                    "frames": len(plan),
                    "backend": backend,
                    "zoo_decode_s": t_read,
                    "transformers_decode_s": t_hf,
                    "decode_ratio": t_hf / t_read,
                    "end_to_end_s": t_e2e,
                    "end_to_end_fps": len(plan) / t_e2e,
                    "same_frames": same,
                }
                records.append(rec)
                rows.append(
                    [
                        len(plan),
                        backend,
                        len(plan) / t_read,
                        len(plan) / t_hf,
                        rec["decode_ratio"],
                        same,
                        rec["end_to_end_fps"],
                    ]
                )
    print_table(
        f"Video -> 448 px tiles ({seconds} s, {width}x{height} @ {args.fps} fps, {torch.get_num_threads()} threads)",
        ["frames", "backend", "zoo decode f/s", "transformers decode f/s", "ratio", "same frames", "end-to-end f/s"],
        rows,
    )
    summary = {f"{r['backend']}@{r['frames']} decode ratio": r["decode_ratio"] for r in records}
    summary |= {f"{r['backend']}@{r['frames']} end-to-end frames/s": r["end_to_end_fps"] for r in records}
    result = {
        "config": {"seconds": seconds, "fps": args.fps, "size": [width, height]},
        "rows": records,
        "summary": summary,
    }
    write_json("vision_video", result)
    return result


def _read(path: Path, backend: str, indices) -> np.ndarray:
    from zoo.vision.video import open_video

    reader = open_video(path, backend)  # type: ignore[arg-type]
    try:
        return np.concatenate(list(reader.read(indices)))
    finally:
        reader.close()


def _hf_read(load_video, path: Path, backend: str, indices) -> np.ndarray:
    frames, _ = load_video(str(path), backend=backend, sample_indices_fn=lambda metadata, **kw: np.array(indices))
    return frames


def _zoo(proc: EagleProcessor, path: Path, backend: str, n: int) -> torch.Tensor:
    """The zoo path with an explicit backend (the processor itself picks decord when installed)."""
    from zoo.vision import video as video_mod

    reader = video_mod.open_video(path, backend)  # type: ignore[arg-type]
    try:
        info = reader.info
        plan = plan_frames(info.num_frames, info.fps, target_fps=n / info.duration, min_frames=4, max_frames=n)
        return torch.cat([proc._frame_tensor(list(chunk)) for chunk in reader.read(plan.indices)])
    finally:
        reader.close()


if __name__ == "__main__":
    main()
