"""SigLIP tower (timm blocks) vs transformers SiglipVisionModel, the key map both ways, and the projector order."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from transformers import SiglipVisionConfig, SiglipVisionModel

from zoo import hub
from zoo.errors import CheckpointError, ConfigError
from zoo.vision.projector import build_mlp1, pixel_shuffle, project
from zoo.vision.siglip import SiglipConfig, SiglipTower, siglip_key_map


def tiny_siglip(tmp_path, *, head: bool, prefix: str = ""):
    torch.manual_seed(0)
    hc = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=72,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=42,
        patch_size=14,
        vision_use_head=head,
    )
    ref = SiglipVisionModel(hc).eval()
    save_file({prefix + k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "model.safetensors"))
    return ref, SiglipConfig.from_hf(hc.to_dict())


@pytest.mark.parametrize("head", [True, False])
def test_tower_matches_transformers(tmp_path, head):
    ref, cfg = tiny_siglip(tmp_path, head=head)
    tower = SiglipTower(cfg).eval()
    reader = hub.SafetensorsReader(tmp_path)
    hub.load_weights(tower, siglip_key_map(cfg), reader)
    x = torch.randn(3, 3, 42, 42)
    with torch.no_grad():
        out = ref(x, output_hidden_states=True)
        diff = (out.last_hidden_state - tower.features(x, -1)).abs().max().item()
        print(f"last_hidden_state max |diff| = {diff:.2e}")
        assert diff <= 1e-4
        for sl in (-2, -4, 0, 1, 3):  # HF hidden_states indexing, without the post LayerNorm
            torch.testing.assert_close(tower.features(x, sl), out.hidden_states[sl], atol=1e-4, rtol=0)
        inter = tower.forward_intermediates(x, [0, -1])
        torch.testing.assert_close(inter[1], out.hidden_states[-1], atol=1e-4, rtol=0)
        if head:
            torch.testing.assert_close(
                tower.forward_head(tower.forward_features(x)), out.pooler_output, atol=1e-4, rtol=0
            )
    # reverse map: our tensors written back are exactly the HF tensors
    back = dict(hub.hf_state_dict(tower, siglip_key_map(cfg)))
    assert set(back) == set(ref.state_dict())
    assert all(torch.equal(back[k], v) for k, v in ref.state_dict().items())


def test_key_map_is_prefixed_and_strict(tmp_path):
    ref, cfg = tiny_siglip(tmp_path, head=True, prefix="vision_model.vision_model.")
    km = siglip_key_map(cfg, ours="vision_model.", hf="vision_model.vision_model.")
    assert "vision_model.vision_model.encoder.layers.2.self_attn.q_proj.weight" in km.hf_keys()
    tower_holder = torch.nn.Module()
    tower_holder.vision_model = SiglipTower(cfg)
    hub.load_weights(tower_holder, km, hub.SafetensorsReader(tmp_path))
    # a head-less config refuses nothing the checkpoint holds for the head (ignored), but missing blocks raise
    deeper = SiglipConfig(**{**cfg.__dict__, "num_hidden_layers": 4})
    holder = torch.nn.Module()
    holder.vision_model = SiglipTower(deeper)
    with pytest.raises(CheckpointError, match="encoder.layers.3"):
        hub.load_weights(
            holder,
            siglip_key_map(deeper, ours="vision_model.", hf="vision_model.vision_model."),
            hub.SafetensorsReader(tmp_path),
        )


def test_config_validation():
    with pytest.raises(ConfigError, match="siglip2_vision_model"):
        SiglipConfig.from_hf({"model_type": "siglip2_vision_model"})
    with pytest.raises(ConfigError, match="hidden_act"):
        SiglipConfig(hidden_act="swish")
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        SiglipConfig(image_size=450, patch_size=14)
    so400m = SiglipConfig()  # int(1152 * 4304/1152) could round to 4303 without the nudge
    assert so400m.to_hf()["intermediate_size"] == 4304


def reference_pixel_shuffle(x: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """Transcription of the upstream view/permute sequence (InternVL / Eagle, ps_version v2)."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x.permute(0, 2, 1, 3).contiguous()


def test_pixel_shuffle_element_order():
    n, g, c = 2, 6, 5
    x = torch.randn(n, g, g, c)
    y = pixel_shuffle(x)
    assert torch.equal(y, reference_pixel_shuffle(x))
    for r in range(g // 2):
        for col in range(g // 2):
            want = torch.cat(
                [
                    x[:, 2 * r, 2 * col],
                    x[:, 2 * r, 2 * col + 1],
                    x[:, 2 * r + 1, 2 * col],
                    x[:, 2 * r + 1, 2 * col + 1],
                ],
                -1,
            )
            assert torch.equal(y[:, r, col], want)
    with pytest.raises(ValueError, match="does not tile"):
        pixel_shuffle(torch.randn(1, 5, 5, 2))


def test_mlp1_keys_and_project_shapes():
    mlp1 = build_mlp1(32, 64)
    assert sorted(k for k in mlp1.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight", "3.bias", "3.weight"]
    assert mlp1[0].normalized_shape == (128,) and mlp1[1].in_features == 128 and mlp1[3].out_features == 64
    out = project(torch.randn(3, 16, 32), mlp1, grid=4)
    assert out.shape == (3 * 4, 64)
