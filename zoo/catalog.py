"""The zoo's entries, one small block each. Values come from ../shared/reference/checkpoints.md.

`config` is the full-size config.json (used by `zoo info`, the memory planner and the model cards; a downloaded
checkpoint's own config.json always wins when loading). `tiny` keeps the family's block pattern with tiny
dimensions and random weights (`zoo.load(name, tiny=True)`), for tests, CI and laptops.
"""

from __future__ import annotations

from zoo.registry import Entry, register

NANO_V2_PATTERN = "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"
NANO_12B_PATTERN = "M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-"
H8B_PATTERN = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"
TINY_VOCAB = 512


def nemotron_h(*, hidden: int, pattern: str, heads: int, kv: int, head_dim: int, inter: int, mamba_heads: int,
               mamba_head_dim: int, state: int, groups: int = 8, max_pos: int = 131072, vocab: int = 131072,
               chunk: int = 128, eos: int | list[int] = 2) -> dict:
    """A nemotron_h config.json in the upstream schema (checkpoints.md 1.1)."""
    return {
        "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "vocab_size": vocab,
        "hidden_size": hidden, "hybrid_override_pattern": pattern, "num_hidden_layers": len(pattern),
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim, "intermediate_size": inter,
        "mlp_hidden_act": "relu2", "mamba_num_heads": mamba_heads, "mamba_head_dim": mamba_head_dim,
        "ssm_state_size": state, "n_groups": groups, "conv_kernel": 4, "chunk_size": chunk, "use_conv_bias": True,
        "time_step_min": 0.001, "time_step_max": 0.1, "time_step_floor": 1e-4, "layer_norm_epsilon": 1e-5,
        "max_position_embeddings": max_pos, "tie_word_embeddings": False, "attention_bias": False,
        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": eos, "torch_dtype": "bfloat16",
    }


def tiny_nemotron_h(pattern: str) -> dict:
    """Same pattern, tiny dims: hidden 64, 4 heads / 2 kv, 4 Mamba heads x 16, state 16, 2 groups, chunk 16."""
    return nemotron_h(hidden=64, pattern=pattern, heads=4, kv=2, head_dim=16, inter=128, mamba_heads=4,
                      mamba_head_dim=16, state=16, groups=2, max_pos=4096, vocab=TINY_VOCAB, chunk=16)


def llama_like(model_type: str, *, hidden: int, layers: int, heads: int, kv: int, inter: int, vocab: int,
               rope_theta: float, max_pos: int, eps: float, tie: bool = False, rope_scaling: dict | None = None,
               bos: int | None = None, eos: int | list[int] | None = None, head_dim: int | None = None) -> dict:
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[model_type]
    cfg = {"architectures": [arch], "model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter, "vocab_size": vocab,
           "rope_theta": rope_theta, "rope_scaling": dict(rope_scaling) if rope_scaling else None,
           "max_position_embeddings": max_pos,
           "rms_norm_eps": eps, "tie_word_embeddings": tie, "hidden_act": "silu", "bos_token_id": bos,
           "eos_token_id": eos, "torch_dtype": "bfloat16"}
    if head_dim:
        cfg["head_dim"] = head_dim
    return cfg


def tiny_llama_like(model_type: str, *, layers: int = 2, rope_scaling: dict | None = None, tie: bool = False) -> dict:
    return llama_like(model_type, hidden=64, layers=layers, heads=4, kv=2, inter=128, vocab=TINY_VOCAB,
                      rope_theta=10000.0, max_pos=4096, eps=1e-6, tie=tie, rope_scaling=rope_scaling)


LLAMA3_SCALING_8 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192}


def decilm_block(attn: str | int, ffn: float | str) -> dict:
    """One DeciLM block_config: attn = n_heads_in_group | "noop" | "linear"; ffn = ffn_mult | "noop" | "linear"."""
    a = {"no_op": attn == "noop", "replace_with_linear": attn == "linear",
         "n_heads_in_group": attn if isinstance(attn, int) else None, "sparsify": None, "window_length": None,
         "num_sink_tokens": None, "use_prefill_window_in_sink_attention": False, "unshifted_sink": False}
    f = {"no_op": ffn == "noop", "replace_with_linear": ffn == "linear",
         "ffn_mult": ffn if isinstance(ffn, float) else None, "sparsify": None}
    return {"attention": a, "ffn": f}


def decilm(*, hidden: int, heads: int, blocks: list[dict], rope_scaling: dict, vocab: int = 128256) -> dict:
    return {"architectures": ["DeciLMForCausalLM"], "model_type": "nemotron-nas", "hidden_size": hidden,
            "num_hidden_layers": len(blocks), "num_attention_heads": heads, "num_key_value_heads": None,
            "intermediate_size": None, "vocab_size": vocab, "rope_theta": 500000.0, "rope_scaling": dict(rope_scaling),
            "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "hidden_act": "silu",
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False, "bos_token_id": 128000,
            "eos_token_id": [128001, 128008, 128009], "block_configs": blocks, "torch_dtype": "bfloat16"}


def _super49b_blocks() -> list[dict]:
    """Super-49B-v1 layer structure: 31 attention no-ops at the published layers; FFN multipliers with the published
    counts (49 x 5.25, 6 x 2.625, 10 x 1.3125, 8 x 1.0, 6 x 0.5, 1 x 3.28125). The per-layer order of the reduced
    FFNs is not in our reference (the checkpoint's config.json is authoritative); counts, and so parameters and
    memory, are exact."""
    noop = {6, 7, 11, *range(42, 52), *range(53, 71)}
    reduced = [2.625] * 6 + [1.3125] * 10 + [1.0] * 8 + [0.5] * 6 + [3.28125]
    mults = [reduced.pop(0) if (i == 0 or 30 < i < 71) and reduced else 5.25 for i in range(80)]
    return [decilm_block("noop" if i in noop else 8, mults[i]) for i in range(80)]


def _ultra253b_blocks() -> list[dict]:
    """Ultra-253B-v1 structure from the published no-op lists and the four wide FFN layers. Remaining FFN multipliers
    are set to 4.875 (the most common published value): approximate; the checkpoint's config.json is authoritative."""
    def spans(*rs):
        out = set()
        for r in rs:
            out |= set(range(r[0], r[1] + 1)) if isinstance(r, tuple) else {r}
        return out
    attn_noop = spans((9, 12), (18, 23), (27, 31), (36, 38), 42, (44, 49), (54, 58), (63, 67), (72, 76), (81, 85),
                      (90, 91), (96, 97), (99, 106), (108, 112), 115, (117, 150), 153)
    ffn_noop = spans((9, 12), (18, 23), (27, 31), (36, 38), (45, 49), (54, 58), (63, 67), (72, 76), (81, 85),
                     (90, 91), 99, (108, 112), (117, 124), (126, 133), (135, 142), (144, 148), 153)
    wide = {125: 36.5625, 134: 39.0, 143: 31.40625, 149: 27.5625}
    return [decilm_block("noop" if i in attn_noop else 16, "noop" if i in ffn_noop else wide.get(i, 4.875))
            for i in range(162)]


def _tiny_decilm() -> dict:
    """Every DeciLM block kind: full, attention no-op, linear replacements, varied FFN widths, an identity layer."""
    blocks = [decilm_block(2, 2.0), decilm_block("noop", 1.0), decilm_block("linear", 3.0),
              decilm_block(4, "linear"), decilm_block("noop", "noop"), decilm_block(2, 0.5)]
    cfg = decilm(hidden=64, heads=4, blocks=blocks, rope_scaling=LLAMA3_SCALING_8, vocab=TINY_VOCAB)
    cfg.update(max_position_embeddings=4096, bos_token_id=1, eos_token_id=2)
    return cfg


NVIDIA_OPEN = "nvidia-open-model-license"
LLAMA_COMMUNITY = "llama3.1"

# ---------------------------------------------------------------------- Nemotron-H / Nano-v2
register(Entry(
    name="nano-9b-v2", family="nemotron_h", hub_repo="nvidia/NVIDIA-Nemotron-Nano-9B-v2",
    description="Nemotron Nano 9B v2: hybrid Mamba-2/attention reasoning model (pruned + distilled from 12B).",
    config=nemotron_h(hidden=4480, pattern=NANO_V2_PATTERN, heads=40, kv=8, head_dim=128, inter=15680,
                      mamba_heads=128, mamba_head_dim=80, state=128),
    tiny=tiny_nemotron_h(NANO_V2_PATTERN), chat_format="nemotron-v2", paper=("2508.14444",), license=NVIDIA_OPEN,
    recipes=("pretrain", "sft", "distill"), base_model="nvidia/NVIDIA-Nemotron-Nano-12B-v2-Base",
    tags=("nemotron", "hybrid", "mamba2", "reasoning")), aliases=("nemotron-nano-9b-v2",))
register(Entry(
    name="nano-9b-v2-base", family="nemotron_h", hub_repo="nvidia/NVIDIA-Nemotron-Nano-9B-v2-Base",
    description="Nemotron Nano 9B v2 base model (before alignment).",
    config=nemotron_h(hidden=4480, pattern=NANO_V2_PATTERN, heads=40, kv=8, head_dim=128, inter=15680,
                      mamba_heads=128, mamba_head_dim=80, state=128),
    tiny=tiny_nemotron_h(NANO_V2_PATTERN), chat_format=None, paper=("2508.14444",), license=NVIDIA_OPEN,
    tags=("nemotron", "hybrid", "mamba2", "base")))
register(Entry(
    name="nano-12b-v2-base", family="nemotron_h", hub_repo="nvidia/NVIDIA-Nemotron-Nano-12B-v2-Base",
    description="Nemotron Nano 12B v2 base: the FP8-pretrained parent of Nano-9B-v2.",
    config=nemotron_h(hidden=5120, pattern=NANO_12B_PATTERN, heads=40, kv=8, head_dim=128, inter=20480,
                      mamba_heads=128, mamba_head_dim=80, state=128),
    tiny=tiny_nemotron_h(NANO_12B_PATTERN), chat_format=None, paper=("2508.14444",), license=NVIDIA_OPEN,
    recipes=("pretrain", "sft"), tags=("nemotron", "hybrid", "mamba2", "base")))
register(Entry(
    name="nemotron-h-8b-base", family="nemotron_h", hub_repo="nvidia/Nemotron-H-8B-Base-8K",
    description="Nemotron-H 8B base (8K context): hybrid Mamba-2/attention.",
    config=nemotron_h(hidden=4096, pattern=H8B_PATTERN, heads=32, kv=8, head_dim=128, inter=21504,
                      mamba_heads=128, mamba_head_dim=64, state=128, max_pos=8192),
    tiny=tiny_nemotron_h(H8B_PATTERN), chat_format=None, paper=("2504.03624",), license=NVIDIA_OPEN,
    tags=("nemotron", "hybrid", "mamba2", "base")))

# ---------------------------------------------------------------------- nano-tiny (embedded, trained by zoo itself)
NANO_TINY_PATTERN = "M-*-M-*-*-"
register(Entry(
    name="nano-tiny", family="nemotron_h",
    description="nano-tiny: a 2M-parameter Nemotron-H-pattern model shipped in the package, trained by "
                "`zoo train nano-tiny all` on synthetic word problems (with /think traces) and tool calls.",
    config=nemotron_h(hidden=192, pattern=NANO_TINY_PATTERN, heads=6, kv=2, head_dim=32, inter=576, mamba_heads=4,
                      mamba_head_dim=32, state=16, groups=1, max_pos=1024, vocab=1024, chunk=32, eos=5),
    tiny=nemotron_h(hidden=192, pattern=NANO_TINY_PATTERN, heads=6, kv=2, head_dim=32, inter=576, mamba_heads=4,
                    mamba_head_dim=32, state=16, groups=1, max_pos=1024, vocab=1024, chunk=32, eos=5),
    chat_format="nemotron-v2", license="Apache-2.0", recipes=("pretrain", "sft", "all"), local_dir="data/nano-tiny",
    tags=("nemotron", "hybrid", "mamba2", "reasoning", "tiny", "embedded")))

# ---------------------------------------------------------------------- Llama-Nemotron
register(Entry(
    name="llama-nemotron-nano-8b", family="llama", hub_repo="nvidia/Llama-3.1-Nemotron-Nano-8B-v1",
    description="Llama-3.1-Nemotron-Nano-8B-v1: reasoning on/off via the system prompt.",
    config=llama_like("llama", hidden=4096, layers=32, heads=32, kv=8, inter=14336, vocab=128256,
                      rope_theta=500000.0, max_pos=131072, eps=1e-5, rope_scaling=LLAMA3_SCALING_8, bos=128000,
                      eos=[128001, 128008, 128009]),
    tiny=tiny_llama_like("llama", rope_scaling=LLAMA3_SCALING_8), chat_format="llama-nemotron",
    paper=("2505.00949",), license=LLAMA_COMMUNITY, recipes=("sft",), base_model="meta-llama/Llama-3.1-8B-Instruct",
    tags=("llama-nemotron", "reasoning")))
register(Entry(
    name="llama-nemotron-super-49b", family="nemotron-nas", hub_repo="nvidia/Llama-3_3-Nemotron-Super-49B-v1",
    description="Llama-3.3-Nemotron-Super-49B-v1: Puzzle-derived DeciLM (attention no-ops, varied FFN widths).",
    config=decilm(hidden=8192, heads=64, blocks=_super49b_blocks(), rope_scaling=LLAMA3_SCALING_8),
    tiny=_tiny_decilm(), chat_format="llama-nemotron", paper=("2505.00949", "2411.19146"), license=NVIDIA_OPEN,
    base_model="meta-llama/Llama-3.3-70B-Instruct", tags=("llama-nemotron", "deci", "reasoning")))
register(Entry(
    name="llama-nemotron-ultra-253b", family="nemotron-nas", hub_repo="nvidia/Llama-3_1-Nemotron-Ultra-253B-v1",
    description="Llama-3.1-Nemotron-Ultra-253B-v1: Puzzle + FFN fusion DeciLM from Llama-3.1-405B.",
    config=decilm(hidden=16384, heads=128, blocks=_ultra253b_blocks(),
                  rope_scaling={**LLAMA3_SCALING_8, "factor": 16.0}),
    tiny=_tiny_decilm(), chat_format="llama-nemotron", paper=("2505.00949", "2411.19146"), license=NVIDIA_OPEN,
    base_model="meta-llama/Llama-3.1-405B-Instruct", tags=("llama-nemotron", "deci", "reasoning")))

# ---------------------------------------------------------------------- Qwen2-based reasoning / tools
QWEN7B = dict(hidden=3584, layers=28, heads=28, kv=4, inter=18944, vocab=152064)
QWEN14B = dict(hidden=5120, layers=48, heads=40, kv=8, inter=13824, vocab=152064)
register(Entry(
    name="acereason-nemotron-7b", family="qwen2", hub_repo="nvidia/AceReason-Nemotron-7B",
    description="AceReason-Nemotron-7B: math-then-code RL from DeepSeek-R1-Distill-Qwen-7B.",
    config=llama_like("qwen2", **QWEN7B, rope_theta=10000.0, max_pos=131072, eps=1e-6, bos=151646, eos=151643),
    tiny=tiny_llama_like("qwen2"), chat_format="deepseek-r1", paper=("2505.16400",), license=NVIDIA_OPEN,
    recipes=("grpo",), base_model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", tags=("acereason", "math", "code")))
register(Entry(
    name="acereason-nemotron-14b", family="qwen2", hub_repo="nvidia/AceReason-Nemotron-14B",
    description="AceReason-Nemotron-14B: math-then-code RL from DeepSeek-R1-Distill-Qwen-14B.",
    config=llama_like("qwen2", **QWEN14B, rope_theta=1e6, max_pos=131072, eps=1e-5, bos=151646, eos=151643),
    tiny=tiny_llama_like("qwen2"), chat_format="deepseek-r1", paper=("2505.16400",), license=NVIDIA_OPEN,
    recipes=("grpo",), base_model="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", tags=("acereason", "math", "code")))
register(Entry(
    name="acereason-nemotron-1.1-7b", family="qwen2", hub_repo="nvidia/AceReason-Nemotron-1.1-7B",
    description="AceReason-Nemotron-1.1-7B: SFT + RL from Qwen2.5-Math-7B (rope/max_pos read from the checkpoint).",
    config=llama_like("qwen2", **QWEN7B, rope_theta=10000.0, max_pos=131072, eps=1e-6, eos=151645),
    tiny=tiny_llama_like("qwen2"), chat_format="chatml", paper=("2506.13284",), license=NVIDIA_OPEN,
    recipes=("sft", "grpo"), base_model="Qwen/Qwen2.5-Math-7B", tags=("acereason", "math", "code")))
register(Entry(
    name="tool-n1-7b", family="qwen2", hub_repo="nvidia/Nemotron-Research-Tool-N1-7B",
    description="Nemotron-Research-Tool-N1-7B: tool calling learned by GRPO with a binary reward (Qwen2.5-7B-Instruct).",
    config=llama_like("qwen2", **QWEN7B, rope_theta=1e6, max_pos=32768, eps=1e-6, eos=151645),
    tiny=tiny_llama_like("qwen2"), chat_format="chatml", paper=("2505.00024",), license=NVIDIA_OPEN,
    recipes=("grpo",), base_model="Qwen/Qwen2.5-7B-Instruct", tags=("tool-calling",)))
register(Entry(
    name="tool-n1-14b", family="qwen2", hub_repo="nvidia/Nemotron-Research-Tool-N1-14B",
    description="Nemotron-Research-Tool-N1-14B: tool calling learned by GRPO (Qwen2.5-14B-Instruct).",
    config=llama_like("qwen2", **QWEN14B, rope_theta=1e6, max_pos=32768, eps=1e-6, eos=151645),
    tiny=tiny_llama_like("qwen2"), chat_format="chatml", paper=("2505.00024",), license=NVIDIA_OPEN,
    recipes=("grpo",), base_model="Qwen/Qwen2.5-14B-Instruct", tags=("tool-calling",)))
register(Entry(
    name="prismmath-7b", family="qwen2", hub_repo="nvidia/PrismMath-7B",
    description="PrismMath-7B: distilled on Prismatic-Synthesis math data (repo id unverified).",
    config=llama_like("qwen2", **QWEN7B, rope_theta=10000.0, max_pos=131072, eps=1e-6, eos=151645),
    tiny=tiny_llama_like("qwen2"), chat_format="chatml", paper=("2505.20161",), license=NVIDIA_OPEN,
    base_model="Qwen/Qwen2.5-Math-7B", tags=("math", "synthetic-data")))

def tiny_eagle(text_config: dict) -> dict:
    """A tiny eagle_2_5_vl config: SigLIP 32-wide x 2 layers at 56 px tiles (4 tokens per tile) on `text_config`.

    The text vocabulary grows to 520 so the tiny tokenizer's 512 ids plus `<img>`, `</img>`, `<IMG_CONTEXT>`
    (ids 512..514, added by the model's tiny processor) fit.
    """
    return {"architectures": ["Eagle2_5_VLForConditionalGeneration"], "model_type": "eagle_2_5_vl",
            "downsample_ratio": 0.5, "force_image_size": 56, "select_layer": -1, "use_pixel_shuffle": True,
            "max_dynamic_tiles": 6, "min_dynamic_tiles": 1, "use_thumbnail": True, "image_token_index": 514,
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "intermediate_size": 64, "patch_size": 14, "image_size": 56,
                              "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "vision_use_head": False},
            "text_config": {**text_config, "vocab_size": 520}, "torch_dtype": "float32"}


def tiny_qwen2_audio(text_config: dict) -> dict:
    """A tiny qwen2_audio config: the 128-mel, 30 s Whisper front end with a 32-wide x 2-layer encoder on `text_config`.

    The text vocabulary grows to 520 so the tiny tokenizer's 512 ids plus `<|AUDIO|>`, `<|audio_bos|>`,
    `<|audio_eos|>` (ids 512..514, added by the model's tiny processor) fit.
    """
    return {"architectures": ["Qwen2AudioForConditionalGeneration"], "model_type": "qwen2_audio",
            "audio_token_index": 512,
            "audio_config": {"model_type": "qwen2_audio_encoder", "num_mel_bins": 128, "d_model": 32,
                             "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
                             "max_source_positions": 1500, "activation_function": "gelu", "scale_embedding": False},
            "text_config": {**text_config, "vocab_size": 520}, "torch_dtype": "float32"}


# ---------------------------------------------------------------------- multimodal (encoders: zoo.vision, zoo.audio)
register(Entry(
    name="eagle2.5-8b", family="eagle_2_5_vl", hub_repo="nvidia/Eagle2.5-8B",
    description="Eagle 2.5 8B: SigLIP + pixel-shuffle projector + Qwen2.5-7B; long video and high-res images.",
    config={"architectures": ["Eagle2_5_VLForConditionalGeneration"], "model_type": "eagle_2_5_vl",
            "downsample_ratio": 0.5, "force_image_size": 448, "select_layer": -1, "use_pixel_shuffle": True,
            "max_dynamic_tiles": 12, "min_dynamic_tiles": 1, "use_thumbnail": True, "image_token_index": 151667,
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "num_hidden_layers": 27,
                              "num_attention_heads": 16, "intermediate_size": 4304, "patch_size": 14,
                              "image_size": 448, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6},
            "text_config": llama_like("qwen2", **QWEN7B, rope_theta=1e6, max_pos=131072, eps=1e-6, eos=151645)},
    tiny=tiny_eagle(tiny_llama_like("qwen2")), chat_format="chatml", paper=("2504.15271",), license=NVIDIA_OPEN,
    recipes=("sft",), base_model="Qwen/Qwen2.5-7B-Instruct", tags=("vision", "video", "eagle")))
register(Entry(
    name="nano-vl-tiny", family="eagle_2_5_vl",
    description="Tiny Eagle-style VLM on a hybrid Nemotron-H backbone (SigLIP-tiny + pixel-shuffle mlp1), trained "
                "by `zoo train nano-vl-tiny sft` on generated image/video questions.",
    config=tiny_eagle(tiny_nemotron_h("M-M*-")), tiny=tiny_eagle(tiny_nemotron_h("M-M*-")), chat_format="chatml",
    paper=("2504.15271", "2504.03624"), license="apache-2.0", recipes=("sft",), local_dir="data/nano-vl-tiny",
    tags=("vision", "video", "eagle", "hybrid")))
register(Entry(
    name="qwen2-audio-7b", family="qwen2_audio", hub_repo="Qwen/Qwen2-Audio-7B-Instruct",
    description="Qwen2-Audio-7B-Instruct: Whisper-large-v3-style encoder + projector + Qwen2-7B.",
    config={"architectures": ["Qwen2AudioForConditionalGeneration"], "model_type": "qwen2_audio",
            "audio_token_index": 151646, "vocab_size": 156032,
            "audio_config": {"model_type": "qwen2_audio_encoder", "num_mel_bins": 128, "encoder_layers": 32,
                             "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "d_model": 1280,
                             "max_source_positions": 1500},
            "text_config": llama_like("qwen2", hidden=4096, layers=32, heads=32, kv=32, inter=11008, vocab=156032,
                                      rope_theta=10000.0, max_pos=8192, eps=1e-5, bos=151643, eos=151645)},
    tiny=tiny_qwen2_audio(tiny_llama_like("qwen2")), chat_format="chatml", paper=("2407.10759",),
    license="apache-2.0", recipes=("aqa",), tags=("audio", "aqa")))
register(Entry(
    name="nano-audio-tiny", family="qwen2_audio",
    description="Tiny audio-language model: the Qwen2-Audio encoder + projector on a hybrid Nemotron-H backbone, "
                "trained by `zoo train nano-audio-tiny aqa` on synthetic DCASE-format audio questions.",
    config=tiny_qwen2_audio(tiny_nemotron_h("M-M*-")), tiny=tiny_qwen2_audio(tiny_nemotron_h("M-M*-")),
    chat_format="chatml", paper=("2407.10759", "2504.03624"), license="apache-2.0", recipes=("aqa",),
    local_dir="data/nano-audio-tiny", tags=("audio", "aqa", "hybrid")))
