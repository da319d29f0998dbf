"""Eagle processor: prompt expansion (images, videos with timestamps), pixels, settings from files, ADS, errors."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from vision_videos import frame_id, write_video

from zoo.errors import ConfigError, ZooError
from zoo.tokenizers import tiny_tokenizer
from zoo.vision.processor import EagleProcessor, ProcessorConfig, Video, tile_count
from zoo.vision.sampling import plan_frames

TINY = {
    "force_image_size": 56,
    "downsample_ratio": 0.5,
    "max_dynamic_tiles": 6,
    "vision_config": {"image_size": 56, "patch_size": 14},
}


@pytest.fixture(scope="module")
def tok():
    t = copy.deepcopy(tiny_tokenizer("chatml"))
    t.add_special_tokens(
        {"additional_special_tokens": ["<img>", "</img>", "<IMG_CONTEXT>"]}, replace_extra_special_tokens=False
    )
    return t


@pytest.fixture(scope="module")
def proc(tok):
    return EagleProcessor(tok, ProcessorConfig.from_files(TINY))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("pv") / "v.mp4", 100, fps=10)  # 10 s


def test_settings_come_from_the_files(tmp_path, tok):
    cfg = ProcessorConfig.from_files(TINY, {"image_mean": [0.1, 0.2, 0.3], "max_dynamic_tiles": 2})
    assert (cfg.tile_size, cfg.tokens_per_tile, cfg.max_tiles, cfg.image_mean) == (56, 4, 2, (0.1, 0.2, 0.3))
    with pytest.raises(ConfigError, match="tokens_per_tile 256 disagrees"):
        ProcessorConfig.from_files(TINY, {"tokens_per_tile": 256})
    with pytest.raises(ConfigError, match="size 448 disagrees"):
        ProcessorConfig.from_files(TINY, {"size": {"height": 448, "width": 448}})
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    EagleProcessor(tok, cfg).save_pretrained(tmp_path)
    tok.save_pretrained(str(tmp_path))
    again = EagleProcessor.from_pretrained(tmp_path)
    assert again.config == cfg
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="preprocessor_config.json: invalid JSON"):
        EagleProcessor.from_pretrained(tmp_path, tok)


def test_image_expansion_counts_and_pixels(proc, tok):
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    out = proc("Compare <image-1> with <image-2>.", images=[img, Image.new("RGB", (56, 56), (0, 0, 255))])
    ids, px = out["input_ids"][0], out["pixel_values"]
    n1 = tile_count(proc.config, 300, 100)
    assert px.shape == (n1 + 1, 3, 56, 56)
    assert int((ids == proc.image_token_id).sum()) == (n1 + 1) * 4  # tokens = tiles x tokens_per_tile
    text = tok.decode(ids)
    ctx = re.escape("<IMG_CONTEXT>")
    assert re.search(rf"Compare <image 1><img>({ctx}){{{4 * n1}}}</img> with <image 2><img>({ctx}){{4}}</img>\.", text)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    # normalisation (x / 255 - 0.5) / 0.5: pure red -> (1, -1, -1)
    torch.testing.assert_close(px[0, :, 10, 10], torch.tensor([1.0, -1.0, -1.0]))


def test_video_expansion_timestamps_and_frames(proc, tok, video):
    out = proc("What happens in <video-1>?", videos=[video])
    plan = plan_frames(100, 10.0, min_frames=4, max_frames=256)
    assert len(plan) == 20
    text = tok.decode(out["input_ids"][0])
    assert "What happens in The first video sampled with 2.00 fps: Frame 1 sample at 0.00s: <img>" in text
    stamps = [float(s) for s in re.findall(r"Frame \d+ sample at ([\d.]+)s: ", text)]
    assert stamps == pytest.approx([round(t, 2) for t in plan.timestamps], abs=1e-9)
    px = out["pixel_values"]
    assert px.shape == (20, 3, 56, 56)  # one tile per frame, no thumbnail
    rgb = ((px * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert [frame_id(f) for f in rgb] == list(plan.indices)


def test_video_clip_and_predecoded_frames(proc, tok, video):
    out = proc("<video-1>", videos=[Video(path=str(video), start=5.0)])
    first = tok.decode(out["input_ids"][0])
    assert "Frame 1 sample at 5.00s" in first
    frames = [np.full((30, 40, 3), 100, np.uint8)] * 3
    text = tok.decode(proc("<video-1>", videos=[Video(frames=frames)])["input_ids"][0])
    assert "The first video: Frame 1: <img>" in text and "Frame 3: <img>" in text


def test_messages_and_unreferenced_media(proc, tok):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "Describe."},
    ]
    out = proc(msgs, images=[Image.new("RGB", (56, 56))])
    text = tok.decode(out["input_ids"][0])
    assert text.count("<image 1>") == 1
    assert "<|im_start|>user\n<image 1><img>" in text.split("<|im_start|>assistant\nHi")[1]


def test_ads_keeps_text_and_fits(proc, tok, video):
    full = proc("Summarise <video-1> and <image-1>.", images=[Image.new("RGB", (400, 100))], videos=[video])
    budget = full["input_ids"].shape[1] - 30
    fitted = proc(
        "Summarise <video-1> and <image-1>.", images=[Image.new("RGB", (400, 100))], videos=[video], max_len=budget
    )
    assert fitted["input_ids"].shape[1] <= budget
    assert fitted["pixel_values"].shape[0] < full["pixel_values"].shape[0]
    assert "Summarise" in tok.decode(fitted["input_ids"][0])
    with pytest.raises(ZooError, match="exceeds max_len"):
        proc("word " * 200, max_len=50)


def test_errors(proc, tok, tmp_path):
    with pytest.raises(ZooError, match="nope.png: no such image file"):
        proc("<image-1>", images=[tmp_path / "nope.png"])
    with pytest.raises(ZooError, match="placeholder <video-1> but 0 video"):
        proc("<video-1>")
    with pytest.raises(ZooError, match="do not write <IMG_CONTEXT>"):
        proc("sneaky <IMG_CONTEXT>")
    with pytest.raises(ConfigError, match="'<IMG_CONTEXT>' as a single token"):
        EagleProcessor(tiny_tokenizer("chatml"), ProcessorConfig.from_files(TINY))
