"""Packed multimodal forward == each sample run alone, on the tiny hybrid (Mamba + attention) models; packing and
assistant-only targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.audio.synthetic import make_example
from zoo.training.data import IGNORE_INDEX
from zoo.training.multimodal.loss import mm_forward, mm_loss
from zoo.training.multimodal.packing import balance_rows, collate_rows
from zoo.training.multimodal.render import AudioRenderer, VisionRenderer
from zoo.training.multimodal.vision_tasks import make_item, render_question

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def vl():
    m = zoo.load("nano-vl-tiny", tiny=True, seed=0)
    assert "M" in m.hf_config["text_config"]["hybrid_override_pattern"]  # Mamba and attention both present
    return m.eval()


@pytest.fixture(scope="module")
def audio():
    return zoo.load("nano-audio-tiny", tiny=True, seed=0).eval()


def _vision_samples(model, n, seed=0):
    rng = np.random.default_rng(seed)
    r = VisionRenderer(model.processor, 512)
    out = []
    for i in range(n):
        item = make_item(("count", "colour", "event")[i % 3], rng)
        msgs = [{"role": "user", "content": render_question(item.question, item.choices)},
                {"role": "assistant", "content": item.answer}]
        out.append((r(msgs, item.images, item.videos), item))
    return out


def test_assistant_only_targets(vl):
    (s, item), = _vision_samples(vl, 1)
    learned = vl.processor.tokenizer.decode(s.input_ids[s.loss_mask])
    assert learned == item.answer + "<|im_end|>"
    batch = collate_rows([[s]])
    tgt = batch["labels"][0]
    assert vl.processor.tokenizer.decode(tgt[tgt != IGNORE_INDEX]) == item.answer + "<|im_end|>"
    assert int((batch["input_ids"][0] == vl.config.image_token_id).sum()) == s.media["pixel_values"].shape[0] * 4


@torch.no_grad()
def test_packed_vision_equals_one_by_one(vl):
    samples = [s for s, _ in _vision_samples(vl, 5)]
    rows = [samples[:3], samples[3:]]  # 3 samples share row 0 (image, image, video), row 1 holds 2 + padding
    batch = collate_rows(rows)
    assert batch["document_ids"][0].unique().numel() >= 3
    packed = mm_forward(vl, batch).logits
    for r, row in enumerate(rows):
        at = 0
        for s in row:
            alone = vl(s.input_ids[None], pixel_values=s.media["pixel_values"]).logits[0]
            got = packed[r, at : at + len(s)]
            torch.testing.assert_close(got, alone, atol=2e-5, rtol=1e-4)
            at += len(s)
    # And the loss is the one-by-one losses summed (labels shifted inside each sample).
    total = mm_loss(vl, batch)
    singles = [mm_loss(vl, collate_rows([[s]])) for s in samples]
    assert total.count == sum(x.count for x in singles)
    torch.testing.assert_close(total.loss_sum, sum(x.loss_sum for x in singles), atol=1e-4, rtol=1e-5)


@torch.no_grad()
def test_packed_audio_equals_one_by_one_full_window(audio):
    """Cropped training windows + packing reproduce the released full-window forward of each sample alone."""
    rng = np.random.default_rng(1)
    r = AudioRenderer(audio, 1024)
    samples = []
    for task in ("count", "pitch", "order"):
        ex = make_example(task, rng)
        samples.append(r(ex.question + "\n(A) x\n(B) y", ex.answer, [torch.from_numpy(ex.audio)]))
        samples[-1].meta["wave"] = ex.audio
    batch = collate_rows([samples])
    packed = mm_forward(audio, batch).logits[0]
    at = 0
    for s in samples:
        feats = audio.processor.features([s.meta["wave"]])
        alone = audio(s.input_ids[None], input_features=feats[0], feature_attention_mask=feats[1]).logits[0]
        torch.testing.assert_close(packed[at : at + len(s)], alone, atol=2e-5, rtol=1e-4)
        at += len(s)


def test_balance_rows_length_balanced_and_complete():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(10, 120, 40)]
    rows, left = balance_rows(lengths, 4, 256)
    placed = [i for r in rows for i in r]
    assert sorted(placed + left) == list(range(40)) and len(set(placed)) == len(placed)
    loads = [sum(lengths[i] for i in r) for r in rows]
    assert max(loads) <= 256 and max(loads) - min(loads) <= max(lengths)  # balanced within one sample
    with pytest.raises(ValueError, match="fit it with ADS"):
        balance_rows([300], 1, 256)


def test_collate_pads_media_per_row(vl):
    samples = [s for s, _ in _vision_samples(vl, 3)]
    batch = collate_rows([[samples[0]], [samples[1], samples[2]], []])
    n = [s.media["pixel_values"].shape[0] for s in samples]
    assert batch["media_counts"].tolist() == [n[0], n[1] + n[2], 0]
    assert batch["pixel_values"].shape[:2] == (3, max(n[0], n[1] + n[2]))
    assert batch["attention_mask"][2].sum() == 0 and (batch["labels"][2] == IGNORE_INDEX).all()
