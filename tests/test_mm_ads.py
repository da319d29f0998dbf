"""ADS in the multimodal data path: every rendered sample fits the stage length, text is never dropped, frames then
tiles are degraded, and unfittable samples are dropped and counted."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.training.multimodal.render import VisionRenderer
from zoo.training.multimodal.vision_tasks import vision_stream

torch.set_num_threads(1)
QUESTION = "Describe the picture and the clip in detail, please."
ANSWER = "A striped picture and a short clip of changing colours."


@pytest.fixture(scope="module")
def vl():
    return zoo.load("nano-vl-tiny", tiny=True, seed=0)


def _video(path: Path, n: int = 60, fps: int = 10) -> str:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(n):
            img = np.full((48, 64, 3), (k * 4) % 256, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def _image(w: int, h: int) -> Image.Image:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, ::8] = 255
    return Image.fromarray(a)


def _messages():
    return [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}]


def _text_ids(ids: torch.Tensor, image_token: int) -> list[int]:
    return [t for t in ids.tolist() if t != image_token]


def test_tiles_degrade_text_kept(vl):
    img = _image(336, 168)  # IAP: 6 tiles + thumbnail = 28 context tokens at full quality
    full = VisionRenderer(vl.processor, 4096)(_messages(), [img])
    r = VisionRenderer(vl.processor, len(full) - 12)
    s = r(_messages(), [img])
    assert s is not None and len(s) <= r.max_len < len(full)
    assert s.media["pixel_values"].shape[0] < full.media["pixel_values"].shape[0]
    tok = vl.config.image_token_id
    assert _text_ids(s.input_ids, tok) == _text_ids(full.input_ids, tok)  # every text token survives
    assert vl.processor.tokenizer.decode(s.input_ids[s.loss_mask]) == ANSWER + "<|im_end|>"
    assert r.stats.degraded == 1 and r.stats.kept == 1


def test_frames_degrade_first_then_drop(vl, tmp_path):
    video = _video(tmp_path / "clip.mp4")  # 6 s at 10 fps: 12 frames at 2 fps
    img = _image(112, 112)
    full = VisionRenderer(vl.processor, 8192)(_messages(), [img], [video])
    n_full = full.media["pixel_values"].shape[0]
    r = VisionRenderer(vl.processor, len(full) - 40)
    s = r(_messages(), [img], [video])
    assert s is not None and len(s) <= r.max_len
    assert s.media["pixel_values"].shape[0] < n_full
    decoded = vl.processor.tokenizer.decode(s.input_ids)
    assert QUESTION in decoded and ANSWER in decoded
    # The still image keeps its tiles while frames can still give (temporal degradation comes first).
    tiles_img_full = full.media["pixel_values"].shape[0] - 12
    assert s.media["pixel_values"].shape[0] - tiles_img_full >= 4
    assert r.stats.degraded == 1
    # Text alone over the budget: dropped and counted, never truncated.
    tiny = VisionRenderer(vl.processor, 40)
    assert tiny(_messages(), [img], [video]) is None
    assert tiny.stats.dropped_ads == 1 and tiny.stats.kept == 0


def test_stream_never_exceeds_stage_length(vl):
    r = VisionRenderer(vl.processor, 150)  # tight: 6-frame videos (pre-decoded) do not fit
    got = list(islice(vision_stream(r, seed=3), 40))
    assert all(len(s) <= 150 for s in got)
    st = r.stats
    assert st.kept == 40 and st.seen == st.kept + st.dropped_ads + st.dropped_length and st.seen > 40


def test_jsonl_conversations_with_media_files(vl, tmp_path):
    """The full-scale data source: JSONL conversations whose media are files next to it, ADS-fitted."""
    import json

    from zoo.training.multimodal.run import _jsonl_vision

    _image(336, 168).save(tmp_path / "a.png")
    _video(tmp_path / "b.mp4")
    rows = [{"messages": _messages(), "images": ["a.png"]}, {"messages": _messages(), "videos": ["b.mp4"]}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    budget = len(VisionRenderer(vl.processor, 4096)(_messages(), [tmp_path / "a.png"])) - 12
    r = VisionRenderer(vl.processor, budget)
    got = list(islice(_jsonl_vision(r, str(tmp_path / "d.jsonl"), seed=0), 4))
    assert all(len(s) <= budget and "pixel_values" in s.media for s in got)
    st = r.stats
    assert st.degraded >= 2 and st.kept == 4 and st.seen == st.kept + st.dropped_ads + st.dropped_length
