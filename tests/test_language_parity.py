"""Parity with transformers (the reference) on tiny random models, fp32, both directions.

transformers saves -> zoo.load -> same logits; zoo saves -> transformers loads -> same logits.
"""

from __future__ import annotations

import pytest
import torch

import zoo

TOL = 1e-4


def _nemotron_h_cfg(pattern="M-M*-M-", n_groups=2, chunk=8, mamba_heads=8):
    from transformers import NemotronHConfig

    return NemotronHConfig(vocab_size=97, hidden_size=64, hybrid_override_pattern=pattern, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16, intermediate_size=96, mamba_num_heads=mamba_heads,
                           mamba_head_dim=16, ssm_state_size=16, n_groups=n_groups, conv_kernel=4, chunk_size=chunk,
                           layer_norm_epsilon=1e-5, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _llama_cfg():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=96, max_position_embeddings=256,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                       rope_theta=500000.0)


def _qwen2_cfg(tie=True):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=96, max_position_embeddings=256,
                       tie_word_embeddings=tie, rope_theta=10000.0)


def _hf_model(kind: str, **kw):
    import transformers as T

    torch.manual_seed(0)
    if kind == "nemotron_h":
        m = T.NemotronHForCausalLM(_nemotron_h_cfg(**kw))
    elif kind == "llama":
        m = T.LlamaForCausalLM(_llama_cfg())
    else:
        m = T.Qwen2ForCausalLM(_qwen2_cfg(**kw))
    with torch.no_grad():  # make biases and norms non-trivial so the key map is really exercised
        for name, p in m.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return m.eval().float()


CASES = [
    ("nemotron_h", {}),
    ("nemotron_h", {"pattern": "M*M-*M", "n_groups": 1, "chunk": 16}),
    ("nemotron_h", {"pattern": "MM-*", "n_groups": 4, "chunk": 5, "mamba_heads": 4}),
    ("llama", {}),
    ("qwen2", {"tie": True}),
    ("qwen2", {"tie": False}),
]


@pytest.mark.parametrize("kind,kw", CASES)
def test_transformers_to_zoo(tmp_path, kind, kw):
    hf = _hf_model(kind, **kw)
    hf.save_pretrained(tmp_path)
    ours = zoo.load(tmp_path, dtype="float32")
    torch.manual_seed(1)
    ids = torch.randint(0, 97, (3, 23))
    with torch.no_grad():
        ref = hf(ids).logits
        got = ours(ids).logits
    assert (got - ref).abs().max().item() <= TOL, (got - ref).abs().max().item()


@pytest.mark.parametrize("kind,kw", CASES[:1] + CASES[3:5])
def test_zoo_to_transformers(tmp_path, kind, kw):
    import transformers as T

    hf = _hf_model(kind, **kw)
    hf.save_pretrained(tmp_path / "src")
    ours = zoo.load(tmp_path / "src", dtype="float32")
    ours.save_pretrained(tmp_path / "out", dtype="float32")
    back = T.AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32).eval()
    ids = torch.randint(0, 97, (2, 17))
    with torch.no_grad():
        assert (back(ids).logits - ours(ids).logits).abs().max().item() <= TOL


@pytest.mark.parametrize("kind,kw", [CASES[0], CASES[3], CASES[4]])
def test_left_padding_matches_transformers(tmp_path, kind, kw):
    hf = _hf_model(kind, **kw)
    hf.save_pretrained(tmp_path)
    ours = zoo.load(tmp_path, dtype="float32")
    ids = torch.randint(3, 97, (2, 13))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    ids[0, :4] = 0
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask).logits
        got = ours(ids, attention_mask=mask).logits
    valid = mask.bool()
    assert (got[valid] - ref[valid]).abs().max().item() <= TOL
    # and the padded row equals the same tokens run alone
    with torch.no_grad():
        alone = ours(ids[:1, 4:]).logits
    assert (got[0, 4:] - alone[0]).abs().max().item() <= TOL
