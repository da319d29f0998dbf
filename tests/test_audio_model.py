"""Qwen2-Audio on the shared backbone: encoder and full-model parity vs transformers, processor parity,
checkpoint round trips (both directions), generation, nano-audio-tiny, and the AQA harness on a real model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import (
    Qwen2AudioConfig,
    Qwen2AudioEncoderConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    WhisperFeatureExtractor,
)
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

import zoo.loading
from zoo.audio.features import log_mel
from zoo.audio.model import AudioLanguageModel, AudioLMConfig
from zoo.audio.processor import AUDIO_BOS, AUDIO_EOS, AUDIO_TOKEN
from zoo.audio.whisper import WhisperEncoder, WhisperEncoderConfig, audio_token_counts
from zoo.errors import ZooError
from zoo.registry import get_entry
from zoo.tokenizers import tiny_tokenizer

SR = 16000
VOCAB = 520
AUDIO_ID = 512


def _tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _tokenizer():
    tok = copy.deepcopy(tiny_tokenizer("chatml"))
    tok.add_special_tokens({"additional_special_tokens": [AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS]})
    assert tok.convert_tokens_to_ids(AUDIO_TOKEN) == AUDIO_ID
    return tok


def _hf_config() -> Qwen2AudioConfig:
    return Qwen2AudioConfig(
        audio_config=dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                          encoder_ffn_dim=64, max_source_positions=1500),
        text_config=dict(model_type="qwen2", vocab_size=VOCAB, hidden_size=64, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                         max_position_embeddings=512),
        audio_token_index=AUDIO_ID,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    """A tiny random transformers Qwen2-Audio saved in the hub layout, with a tokenizer."""
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(_hf_config()).eval()
    with torch.no_grad():  # non-trivial norms and positions, so a mis-mapped key cannot hide
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
        model.model.audio_tower.embed_positions.weight.normal_(0, 0.5)
    path = tmp_path_factory.mktemp("q2a")
    model.save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return model, path


def _inputs(model: AudioLanguageModel):
    """Two clips of different lengths in one ChatML prompt, built by our processor."""
    prompt = "<|im_start|>user\nWhich tone is higher?<|im_end|>\n<|im_start|>assistant\n"
    return model.prepare_chat_inputs(prompt, audios=[_tone(440, 1.0), (_tone(880, 0.5), 8000)])


# ---------------------------------------------------------------------------------------------------------------
# Parity
# ---------------------------------------------------------------------------------------------------------------


def test_encoder_parity_with_padding_masks():
    torch.manual_seed(0)
    hc = Qwen2AudioEncoderConfig(num_mel_bins=80, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                                 encoder_ffn_dim=64, max_source_positions=1500)  # fmt: skip
    ref = Qwen2AudioEncoder(hc).eval()
    ours = WhisperEncoder(WhisperEncoderConfig.from_hf(hc.to_dict())).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # names mirror upstream
    feats, frames = log_mel([_tone(300, 2.0), _tone(300, 30.0)], n_mels=80, return_lengths=True)
    conv = (frames - 1) // 2 + 1
    mask = create_bidirectional_mask(config=hc, inputs_embeds=torch.zeros(2, 1500, 1),
                                     attention_mask=(torch.arange(1500)[None] < conv[:, None]).long())  # fmt: skip
    with torch.no_grad():
        a, b = ours(feats, frames), ref(feats, attention_mask=mask).last_hidden_state
    n = audio_token_counts(frames)
    assert n.tolist() == [50, 750]
    for i in range(2):
        diff = (a[i, : n[i]] - b[i, : n[i]]).abs().max().item()
        print(f"encoder clip {i}: max diff {diff:.2e}")
        assert diff <= 1e-5


def test_processor_matches_transformers(hf_checkpoint):
    from zoo.audio.io import as_waveform
    from zoo.audio.processor import audio_block

    _, path = hf_checkpoint
    model = zoo.loading.load(path)
    prompt = "<|im_start|>user\n" + audio_block(1) + audio_block(2) + "Which?<|im_end|>\n<|im_start|>assistant\n"
    clips = [_tone(440, 1.0), as_waveform((_tone(880, 0.5), 8000))]
    ours = model.prepare_chat_inputs(prompt, audios=clips)
    plain = prompt.replace(audio_block(1) + audio_block(2), "")
    assert model.prepare_chat_inputs(plain, audios=clips)["input_ids"].tolist() == ours["input_ids"].tolist()
    proc = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128),
                               tokenizer=model.processor.tokenizer)  # fmt: skip
    ref = proc(text=prompt, audio=clips, sampling_rate=SR, return_tensors="pt")
    assert ref["input_ids"].tolist() == ours["input_ids"].tolist()
    # 1 s -> 100 frames -> 25 tokens; 8000 samples read as 8 kHz are also 1 s once resampled to 16 kHz
    assert int((ours["input_ids"] == AUDIO_ID).sum()) == 25 + 25
    torch.testing.assert_close(ref["input_features"], ours["input_features"], atol=1e-4, rtol=0)
    assert ref["feature_attention_mask"].tolist() == ours["feature_attention_mask"].tolist()


def test_full_model_parity_with_transformers(hf_checkpoint):
    ref, path = hf_checkpoint
    model = zoo.loading.load(path)
    assert isinstance(model, AudioLanguageModel) and model.config.text.family == "qwen2"
    inp = _inputs(model)
    with torch.no_grad():
        ours = model(**inp).logits
        theirs = ref(**inp).logits
    diff = (ours - theirs).abs().max().item()
    print(f"full model: max |logits diff| = {diff:.2e} over {tuple(ours.shape)}")
    assert diff <= 1e-4
    # The audio really matters: silence instead of the tones changes the logits.
    quiet = dict(inp, input_features=torch.full_like(inp["input_features"], -0.5))
    with torch.no_grad():
        assert (model(**quiet).logits - ours).abs().max() > 1e-3


def test_save_pretrained_writes_the_upstream_layout(hf_checkpoint, tmp_path):
    ref, path = hf_checkpoint
    model = zoo.loading.load(path)
    out = model.save_pretrained(tmp_path / "saved")
    with safe_open(str(path / "model.safetensors"), "pt") as a, safe_open(str(out / "model.safetensors"), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for k in a.keys():
            assert torch.equal(a.get_tensor(k), b.get_tensor(k)), k
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_audio" and cfg["audio_token_index"] == AUDIO_ID
    assert json.loads((out / "preprocessor_config.json").read_text())["feature_size"] == 128
    # transformers reads it back with every key used, and computes the same logits.
    back = Qwen2AudioForConditionalGeneration.from_pretrained(out).eval()
    inp = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(back(**inp).logits, ref(**inp).logits, atol=1e-5, rtol=0)


def test_real_7b_config_resolves_qwen2_defaults():
    hf = get_entry("qwen2-audio-7b").config
    cfg = AudioLMConfig.from_hf({**hf, "text_config": {k: v for k, v in hf["text_config"].items()
                                                       if k not in ("hidden_size", "num_hidden_layers")}})  # fmt: skip
    assert cfg.text.hidden_size == 4096 and cfg.text.num_layers == 64  # 32 decoder layers = 64 blocks
    assert cfg.text.num_key_value_heads == 32 and cfg.text.vocab_size == 156032 and cfg.audio_token_id == 151646
    with torch.device("meta"):
        big = AudioLanguageModel.from_hf_config(hf)
    n = sum(p.numel() for p in big.parameters())
    assert 8.3e9 < n < 8.5e9  # Qwen2-Audio-7B has 8.4 B parameters
    keys = big.hf_key_map().hf_keys()
    assert "audio_tower.layers.31.self_attn.k_proj.weight" in keys
    assert "audio_tower.layers.31.self_attn.k_proj.bias" not in keys
    assert {"multi_modal_projector.linear.weight", "language_model.lm_head.weight",
            "language_model.model.layers.31.self_attn.q_proj.bias"} <= set(keys)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Generation, chat, errors
# ---------------------------------------------------------------------------------------------------------------


def test_cached_generation_matches_full_forward(hf_checkpoint):
    from zoo.generate import generate

    _, path = hf_checkpoint
    model = zoo.loading.load(path)
    inp = _inputs(model)
    ids, mask = inp.pop("input_ids"), inp.pop("attention_mask")
    out = generate(model, ids, mask, max_new_tokens=6, eos_token_id=[], **inp)[0]
    assert len(out) == 6
    # Greedy decode over the cache must agree with argmax of one full forward over prompt + generated tokens.
    full = torch.cat([ids, torch.tensor([out])], dim=1)
    with torch.no_grad():
        logits = model(full, **inp).logits[0, ids.shape[1] - 1 : -1]
    assert logits.argmax(-1).tolist() == out


def test_chat_with_audio_and_errors(hf_checkpoint):
    _, path = hf_checkpoint
    model = zoo.loading.load(path)
    reply = model.chat("What do you hear?", audios=[_tone(440, 0.5)], max_new_tokens=4)
    assert reply.prompt_tokens > 30 and reply.completion_tokens >= 1
    with pytest.raises(ZooError, match="1 <\\|AUDIO\\|> placeholders but 2 audio clips"):
        model.prepare_chat_inputs(f"x {AUDIO_TOKEN} y", audios=[_tone(440, 0.5), _tone(440, 0.5)])
    with pytest.raises(ZooError, match="audio only"):
        model.prepare_chat_inputs("x", images=["img.png"])
    inp = _inputs(model)
    with pytest.raises(ZooError, match="positions but the audio gives"):
        model(inp["input_ids"][:, 20:], input_features=inp["input_features"],
              feature_attention_mask=inp["feature_attention_mask"])  # fmt: skip
    with pytest.raises(ZooError, match="no input_features"):
        model(inp["input_ids"])


# ---------------------------------------------------------------------------------------------------------------
# nano-audio-tiny (hybrid backbone) and the AQA harness on a real model
# ---------------------------------------------------------------------------------------------------------------


def test_nano_audio_tiny_roundtrip_and_gradients(tmp_path):
    model = zoo.loading.load("nano-audio-tiny", tiny=True, seed=0)
    assert model.config.text.family == "nemotron_h" and "mamba" in {b.mixer for b in model.config.text.blocks}
    inp = _inputs(model)
    with torch.no_grad():
        ref = model(**inp).logits
    again = zoo.loading.load(model.save_pretrained(tmp_path / "nat"))
    with torch.no_grad():
        torch.testing.assert_close(again(**inp).logits, ref, atol=0, rtol=0)
    model.train()
    model(**inp).logits.float().logsumexp(-1).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert no_grad == []
    assert not model.audio_tower.embed_positions.weight.requires_grad  # frozen, as upstream


def test_aqa_end_to_end_on_tiny_model(tmp_path):
    import argparse

    from zoo.audio import aqa
    from zoo.audio.synthetic import write_synthetic_aqa

    data = write_synthetic_aqa(tmp_path / "set", n_per_task=1, seed=0)
    model = zoo.loading.load("nano-audio-tiny", tiny=True, seed=0)
    items = aqa.load_aqa(data)
    res = aqa.evaluate(items, mode="likelihood", score=aqa.likelihood_scorer(model), k=2)
    assert 0.0 <= res.metrics["macro"]["accuracy_mean"] <= 1.0
    assert all(r.scores is not None and all(s < 0 for s in r.scores) for r in res.records)
    # The command line (`zoo aqa`): generation mode through model.chat on the real tiny entry, files written.
    from zoo.commands import aqa as aqa_command

    parser = argparse.ArgumentParser()
    aqa_command.register(parser.add_subparsers())
    args = parser.parse_args(["aqa", "--model", "nano-audio-tiny", "--tiny", "--data", str(data), "--k", "2",
                              "--limit", "2", "--max-new-tokens", "3", "--out", str(tmp_path / "out")])  # fmt: skip
    assert args.func(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["mode"] == "generation" and len(report["questions"]) == 2
    assert (tmp_path / "out" / "submission.csv").read_text().startswith("question,answer\n")
