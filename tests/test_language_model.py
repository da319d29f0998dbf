"""Backbone behaviour: decode == full forward, packing, DeciLM formulas, bf16, every entry trains."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.language.config import LMConfig
from zoo.language.model import LanguageModel


def _tiny(name: str, seed: int = 0):
    return zoo.load(name, tiny=True, seed=seed)


@pytest.mark.parametrize("name", ["nano-9b-v2", "llama-nemotron-nano-8b", "acereason-nemotron-7b",
                                  "llama-nemotron-super-49b"])
def test_decode_equals_full_forward(name):
    m = _tiny(name)
    ids = torch.randint(0, 500, (2, 21))
    with torch.no_grad():
        full = m(ids).logits
        cache = m.new_cache(2)
        first = m(ids[:, :9], cache=cache).logits  # prefill 9 (not a multiple of the chunk size 16)
        second = m(ids[:, 9:14], cache=cache).logits  # chunked continuation from the cache
        steps = [m(ids[:, t:t + 1], cache=cache).logits for t in range(14, 21)]
    got = torch.cat([first, second, *steps], dim=1)
    assert (got - full).abs().max().item() < 1e-4
    if name == "nano-9b-v2":
        # the Mamba part of the cache does not grow with length
        assert cache.ssm_bytes() == m.new_cache(2).ssm_bytes()


def test_batched_left_padding_decode_matches_unpadded():
    m = _tiny("nano-9b-v2")
    a = torch.randint(3, 500, (1, 12))
    b = torch.randint(3, 500, (1, 7))
    ids = torch.zeros(2, 12, dtype=torch.long)
    ids[0], ids[1, 5:] = a[0], b[0]
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    nxt = torch.randint(3, 500, (2, 3))
    with torch.no_grad():
        cache = m.new_cache(2)
        m(ids, attention_mask=mask, cache=cache)
        outs = [m(nxt[:, t:t + 1], cache=cache).logits[:, 0] for t in range(3)]
        ref_b = m(torch.cat([b, nxt[1:]], dim=1)).logits[0, -3:]
        ref_a = m(torch.cat([a, nxt[:1]], dim=1)).logits[0, -3:]
    got = torch.stack(outs, dim=1)
    assert (got[1] - ref_b).abs().max().item() < 1e-4
    assert (got[0] - ref_a).abs().max().item() < 1e-4


@pytest.mark.parametrize("name", ["nano-9b-v2", "acereason-nemotron-7b"])
def test_packed_documents_equal_separate_runs(name):
    m = _tiny(name)
    lens = [5, 11, 8]
    docs = [torch.randint(0, 500, (1, n)) for n in lens]
    ids = torch.cat(docs, dim=1)
    doc_ids = torch.cat([torch.full((1, n), i) for i, n in enumerate(lens)], dim=1)
    with torch.no_grad():
        packed = m(ids, document_ids=doc_ids).logits
        alone = torch.cat([m(d).logits for d in docs], dim=1)
    assert (packed - alone).abs().max().item() < 1e-4


def _decilm_reference(m, ids: torch.Tensor) -> torch.Tensor:
    """Independent reference from the DeciLM formulas: per-layer attention (llama3 RoPE, GQA) / linear / no-op and
    SwiGLU / linear / no-op, written with plain loops over positions (no cache, no fused weights)."""
    cfg = m.config
    hf = m.hf_config
    x = m.embed.weight[ids[0]]  # (l, d)
    l, d = x.shape
    hd, H = cfg.head_dim, cfg.num_attention_heads
    inv = 1.0 / (hf["rope_theta"] ** (torch.arange(0, hd, 2).double() / hd))
    s = hf["rope_scaling"]
    wl = 2 * math.pi / inv
    lo, hi = s["original_max_position_embeddings"] / s["low_freq_factor"], \
        s["original_max_position_embeddings"] / s["high_freq_factor"]
    new = []
    for w, f in zip(wl.tolist(), inv.tolist()):
        if w < hi:
            new.append(f)
        elif w > lo:
            new.append(f / s["factor"])
        else:
            sm = (s["original_max_position_embeddings"] / w - s["low_freq_factor"]) / (
                s["high_freq_factor"] - s["low_freq_factor"])
            new.append((1 - sm) * f / s["factor"] + sm * f)
    inv = torch.tensor(new).float()

    def rms(v, w):
        return w * (v / torch.sqrt(v.pow(2).mean(-1, keepdim=True) + cfg.norm_eps))

    def rot(v, pos):  # v (hd,)
        ang = pos * inv
        c, s_ = torch.cos(ang), torch.sin(ang)
        a, b = v[: hd // 2], v[hd // 2:]
        return torch.cat([a * c - b * s_, b * c + a * s_])

    by_layer = {}
    for spec, blk in zip(cfg.blocks, m.blocks):
        by_layer.setdefault(spec.layer, {})[spec.role] = blk
    for i, bc in enumerate(hf["block_configs"]):
        parts = by_layer.get(i, {})
        if not bc["attention"]["no_op"]:
            blk = parts["attn"]
            h = rms(x, blk.norm.weight)
            if bc["attention"]["replace_with_linear"]:
                x = x + h @ blk.mixer.linear.weight.T
            else:
                g = bc["attention"]["n_heads_in_group"]
                kvh = H // g
                wq, wk, wv = blk.mixer.qkv.weight.split([H * hd, kvh * hd, kvh * hd])
                q = (h @ wq.T).view(l, H, hd)
                k = (h @ wk.T).view(l, kvh, hd)
                v = (h @ wv.T).view(l, kvh, hd)
                out = torch.zeros(l, H, hd)
                for t in range(l):
                    for head in range(H):
                        qt = rot(q[t, head], t)
                        kh = head // g
                        scores = torch.stack([rot(k[j, kh], j) @ qt for j in range(t + 1)]) / math.sqrt(hd)
                        out[t, head] = torch.softmax(scores, 0) @ v[: t + 1, kh]
                x = x + out.reshape(l, H * hd) @ blk.mixer.o_proj.weight.T
        if not bc["ffn"]["no_op"]:
            blk = parts["ffn"]
            h = rms(x, blk.norm.weight)
            if bc["ffn"]["replace_with_linear"]:
                x = x + h @ blk.mixer.linear.weight.T
            else:
                width = int(2 * bc["ffn"]["ffn_mult"] * d / 3)
                width = ((width + 255) // 256) * 256
                wg, wu = blk.mixer.gate_up.weight.split([width, width])
                x = x + (F.silu(h @ wg.T) * (h @ wu.T)) @ blk.mixer.down_proj.weight.T
    return rms(x, m.norm_f.weight) @ m.lm_head.weight.T


def test_decilm_matches_formula_reference():
    m = _tiny("llama-nemotron-super-49b")
    kinds = [b.mixer for b in m.config.blocks]
    assert {"attention", "mlp", "linear"} <= set(kinds)
    ids = torch.randint(0, 500, (1, 9))
    with torch.no_grad():
        got = m(ids).logits[0]
        ref = _decilm_reference(m, ids)
    assert (got - ref).abs().max().item() < 1e-4


def test_decilm_llama_equivalence(tmp_path):
    """A DeciLM whose blocks are all full attention + FFN equals transformers' Llama with derived sizes."""
    import transformers as T

    from zoo.catalog import LLAMA3_SCALING_8, decilm, decilm_block

    cfg = decilm(hidden=64, heads=4, blocks=[decilm_block(2, 2.0)] * 2, rope_scaling=LLAMA3_SCALING_8, vocab=97)
    ours = LanguageModel(LMConfig.from_hf(cfg))
    ours.init_weights(0)
    width = ours.config.block_intermediate(ours.config.blocks[1])
    assert width == 256  # int(2*2*64/3)=85 -> rounded up to 256
    llama = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=97, hidden_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2,
                                             intermediate_size=width, rope_theta=500000.0,
                                             rope_scaling=dict(LLAMA3_SCALING_8), max_position_embeddings=131072,
                                             rms_norm_eps=1e-5)).eval()
    from zoo.hub import hf_state_dict
    from zoo.language.checkpoint import language_model_key_map

    sd = dict(hf_state_dict(ours, language_model_key_map(ours.config)))
    missing, unexpected = llama.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    ids = torch.randint(0, 97, (2, 15))
    with torch.no_grad():
        assert (ours(ids).logits - llama(ids).logits).abs().max().item() < 1e-4


def test_bf16_forward_close_to_fp32():
    m = _tiny("nano-9b-v2")
    ids = torch.randint(0, 500, (2, 33))
    with torch.no_grad():
        ref = m(ids).logits
        got = m.to(torch.bfloat16)(ids).logits.float()
    assert torch.isfinite(got).all()
    assert (got - ref).abs().max().item() < 0.05 * ref.abs().max().item() + 0.05


def _example_inputs(m) -> dict:
    """Valid inputs for any entry: token ids for language models; for multimodal ones a real image / tone through
    the model's own processor (`prepare_chat_inputs`, the path `zoo.chat` uses), so encoders get gradients too."""
    if not hasattr(m, "prepare_chat_inputs"):
        return {"input_ids": torch.randint(0, 500, (2, 19))}
    import numpy as np

    prompt = "<|im_start|>user\nWhat is this?<|im_end|>\n<|im_start|>assistant\n"
    if hasattr(m, "encode_audio"):
        t = np.arange(16000) / 16000
        return dict(m.prepare_chat_inputs(prompt, audios=[(0.5 * np.sin(2 * np.pi * 440 * t)).astype("float32")]))
    from PIL import Image

    img = Image.fromarray((np.random.default_rng(0).random((40, 72, 3)) * 255).astype("uint8"))
    return dict(m.prepare_chat_inputs(prompt, images=[img]))


@pytest.mark.parametrize("name", [n for n in zoo.list_models() if zoo.get_entry(n).tiny])
def test_every_entry_tiny_forward_backward(name):
    m = _tiny(name).train()
    inputs = _example_inputs(m)
    ids = inputs["input_ids"]
    out = m(**inputs)
    assert out.logits.shape[:2] == ids.shape and out.logits.shape[2] >= 500
    loss = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    frozen_by_design = {n for n, p in m.named_parameters() if not p.requires_grad}
    no_grad = [n for n, p in m.named_parameters()
               if n not in frozen_by_design and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not no_grad, no_grad
