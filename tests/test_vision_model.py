"""Eagle VLM: parity of the whole model against transformers parts composed in the test, save/load round trip,
the hybrid (Nemotron-H) backbone, and input validation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo.errors import ZooError
from zoo.hub import SafetensorsReader
from zoo.tokenizers import tiny_tokenizer

IMG_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>"]


def eagle_tokenizer():
    tok = copy.deepcopy(tiny_tokenizer("chatml"))
    tok.add_special_tokens({"additional_special_tokens": IMG_TOKENS}, replace_extra_special_tokens=False)
    return tok


def reference_pixel_shuffle(x: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """A transcription of the upstream view/permute sequence (InternVL / Eagle `pixel_shuffle`, ps_version v2)."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x.permute(0, 2, 1, 3).contiguous()


@pytest.fixture(scope="module")
def eagle_dir(tmp_path_factory):
    """A tiny Eagle checkpoint written from transformers Siglip + Qwen2 + an mlp1 built here."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    tok = eagle_tokenizer()
    vcfg = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=56,
        patch_size=14,
        vision_use_head=False,
    )
    tcfg = Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=520,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )
    siglip, qwen = SiglipVisionModel(vcfg).eval(), Qwen2ForCausalLM(tcfg).eval()
    mlp1 = nn.Sequential(nn.LayerNorm(128), nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 64)).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine so a swapped key would show
        mlp1[0].weight.normal_(1.0, 0.1)
        mlp1[0].bias.normal_(0.0, 0.1)
    d = tmp_path_factory.mktemp("eagle")
    tensors = {f"vision_model.vision_model.{k}": v for k, v in siglip.state_dict().items()}
    tensors |= {f"mlp1.{k}": v for k, v in mlp1.state_dict().items()}
    tensors |= {f"language_model.{k}": v for k, v in qwen.state_dict().items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "model.safetensors"))
    config = {
        "architectures": ["Eagle2_5_VLForConditionalGeneration"],
        "model_type": "eagle_2_5_vl",
        "vision_config": vcfg.to_dict(),
        "text_config": tcfg.to_dict(),
        "downsample_ratio": 0.5,
        "select_layer": -1,
        "force_image_size": 56,
        "min_dynamic_tiles": 1,
        "max_dynamic_tiles": 6,
        "use_thumbnail": True,
        "use_pixel_shuffle": True,
        "image_token_index": tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        "torch_dtype": "float32",
    }
    (d / "config.json").write_text(json.dumps(config))
    (d / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28], "max_dynamic_tiles": 4})
    )
    tok.save_pretrained(str(d))
    return d, siglip, mlp1, qwen


def test_vlm_matches_transformers_composition(eagle_dir):
    d, siglip, mlp1, qwen = eagle_dir
    model = zoo.load(d)
    assert model.processor.config.max_tiles == 4  # preprocessor_config.json wins over config.json (6)
    assert model.processor.config.image_mean == (0.48, 0.46, 0.41)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 150, 3), dtype=np.uint8))
    inputs = model.processor("What is in <image-1>?", images=[img])
    px, ids = inputs["pixel_values"], inputs["input_ids"]
    # 150x70 at tile 56: 2x1 scores min(0.597, 0.6) * (2 / 2.14) = 0.557 > 3x1 0.6 * (2.14 / 3) = 0.43; + thumbnail
    assert px.shape[0] == 2 + 1
    assert int((ids == model.config.image_token_id).sum()) == px.shape[0] * 4
    with torch.no_grad():
        ours = model(**inputs).logits
        feats = siglip(px).last_hidden_state.reshape(px.shape[0], 4, 4, 32)
        feats = mlp1(reference_pixel_shuffle(feats).reshape(px.shape[0], -1, 128)).reshape(-1, 64)
        emb = qwen.get_input_embeddings()(ids)
        emb[ids == model.config.image_token_id] = feats
        ref = qwen(inputs_embeds=emb).logits
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_save_pretrained_writes_the_same_layout(eagle_dir, tmp_path):
    d, *_ = eagle_dir
    model = zoo.load(d)
    model.save_pretrained(tmp_path / "out")
    src, out = SafetensorsReader(d), SafetensorsReader(tmp_path / "out")
    assert sorted(src.keys()) == sorted(out.keys())
    for k in src.keys():
        assert torch.equal(src.get(k), out.get(k)), k
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["model_type"] == "eagle_2_5_vl" and cfg["text_config"]["model_type"] == "qwen2"
    pre = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
    assert pre["max_dynamic_tiles"] == 4 and pre["tokens_per_tile"] == 4
    again = zoo.load(tmp_path / "out")
    inputs = model.processor("Hi <image-1>", images=[Image.new("RGB", (40, 90), (200, 10, 10))])
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)


def test_placeholder_count_mismatch_is_rejected(eagle_dir):
    d, *_ = eagle_dir
    model = zoo.load(d)
    inputs = model.prepare_chat_inputs("Hi <image-1>", images=[Image.new("RGB", (56, 56))])
    with pytest.raises(ZooError, match="<IMG_CONTEXT> tokens but pixel_values give"):
        model(inputs["input_ids"], pixel_values=torch.cat([inputs["pixel_values"]] * 2))
    with pytest.raises(ZooError, match="no pixel_values"):
        model(inputs["input_ids"])
    with pytest.raises(ZooError, match="placeholder <image-2>"):
        model.processor("<image-2>", images=[Image.new("RGB", (56, 56))])


def test_hybrid_backbone_nano_vl_tiny(tmp_path):
    model = zoo.load("nano-vl-tiny", tiny=True, seed=0)
    assert model.config.text.family == "nemotron_h"
    assert {b.mixer for b in model.config.text.blocks} >= {"mamba", "attention", "mlp"}
    frames = [np.full((40, 60, 3), 20 * k, np.uint8) for k in range(4)]
    from zoo.vision.processor import Video

    inputs = model.processor(
        "Describe <video-1> and <image-1>", images=[Image.new("RGB", (120, 50))], videos=[Video(frames=frames, fps=2.0)]
    )
    out = model(**inputs)
    assert out.logits.shape[:2] == inputs["input_ids"].shape
    out.logits.float().logsumexp(-1).mean().backward()
    assert model.vision_model.vit.blocks[0].attn.qkv.weight.grad is not None
    assert model.mlp1[1].weight.grad is not None
    model.zero_grad()
    model.save_pretrained(tmp_path / "vl")
    again = zoo.load(tmp_path / "vl")
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, model(**inputs).logits)


def test_generate_with_pixels_prefill_only(eagle_dir):
    d, *_ = eagle_dir
    model = zoo.load(d)
    inputs = model.prepare_chat_inputs("Hi <image-1>", images=[Image.new("RGB", (56, 56), (0, 128, 255))])
    out = model.generate(
        inputs["input_ids"], inputs["attention_mask"], pixel_values=inputs["pixel_values"], max_new_tokens=4
    )
    assert len(out) == 1 and 1 <= len(out[0]) <= 4


def test_chat_with_image_and_prepare_chat_inputs(eagle_dir):
    d, *_ = eagle_dir
    model = zoo.load(d)
    img = Image.new("RGB", (112, 56), (10, 200, 30))
    prompt = model.processor.render_chat("Describe the picture.")
    inputs = model.prepare_chat_inputs(prompt, images=[img])
    text = model.tokenizer.decode(inputs["input_ids"][0])
    # the unreferenced image goes to the start of the user turn, expanded as upstream does
    assert "<|im_start|>user\n<image 1><img><IMG_CONTEXT>" in text and "</img>\nDescribe the picture." in text
    assert inputs["pixel_values"].shape == (3, 3, 56, 56)  # 2x1 grid + thumbnail
    reply = model.chat("Describe the picture.", images=[img], max_new_tokens=3)
    assert isinstance(reply.text, str)
    with pytest.raises(ZooError, match="not audio"):
        model.prepare_chat_inputs(prompt, audios=[np.zeros(16000)])
