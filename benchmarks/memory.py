"""Memory: cache bytes per sequence against context length, hybrid (Nano-9B-v2) vs attention-only of equal size.

Run: ``python -m benchmarks.memory [--quick]``.

* Planned: ``zoo.memory.memory_plan`` for nano-9b-v2 (bf16 K/V, fp32 SSM state) and for an attention-only
  Nemotron-H of the same parameter count (the same widths, the pattern ``*-`` repeated until the parameter counts
  match), at 4k .. 128k tokens.
* Measured: the same comparison at tiny scale, reading the bytes actually held by ``HybridCache`` after a prefill of
  each length (fp32 model), next to what the planner predicts for that tiny config.

Writes ``results/memory.json`` and ``results/memory.png``.
"""

from __future__ import annotations

import argparse
import copy

import torch

from benchmarks._common import plot_lines, print_table, write_json

MIB = 1024**2


def attention_only_twin(hf_config: dict) -> dict:
    """The same Nemotron-H widths with every Mamba block replaced, pattern ``*-`` repeated to equal parameters."""
    from zoo.language.config import LMConfig
    from zoo.memory import count_parameters

    target = count_parameters(LMConfig.from_hf(hf_config))
    best, best_gap = None, None
    for pairs in range(1, 4 * len(hf_config["hybrid_override_pattern"])):
        twin = copy.deepcopy(hf_config)
        twin["hybrid_override_pattern"] = "*-" * pairs
        twin.pop("layers_block_type", None)
        twin.pop("layer_types", None)
        twin["num_hidden_layers"] = 2 * pairs
        gap = abs(count_parameters(LMConfig.from_hf(twin)) - target)
        if best_gap is not None and gap > best_gap:
            break
        best, best_gap = twin, gap
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer measured lengths (smoke test)")
    args = parser.parse_args(argv)
    from zoo.language.config import LMConfig
    from zoo.language.model import LanguageModel
    from zoo.memory import count_parameters, memory_plan
    from zoo.registry import get_entry

    entry = get_entry("nano-9b-v2")
    hybrid_cfg = dict(entry.config)
    twin_cfg = attention_only_twin(hybrid_cfg)
    params = {k: count_parameters(LMConfig.from_hf(c)) for k, c in (("hybrid", hybrid_cfg), ("attention", twin_cfg))}

    contexts = [4096, 8192, 16384, 32768, 65536, 131072]
    planned, rows = [], []
    for ctx in contexts:
        h = memory_plan(hybrid_cfg, ctx, dtype="bfloat16")
        a = memory_plan(twin_cfg, ctx, dtype="bfloat16")
        hb, ab = h.kv_bytes + h.ssm_bytes, a.kv_bytes + a.ssm_bytes
        planned.append({"context": ctx, "hybrid_cache_bytes": hb, "attention_cache_bytes": ab, "ratio": ab / hb,
                        "hybrid_total_gib": h.total_gib, "attention_total_gib": a.total_gib})
        rows.append([ctx, hb / MIB, ab / MIB, ab / hb, h.total_gib, a.total_gib])
    print_table(f"Planned cache per sequence, bf16: nano-9b-v2 ({params['hybrid'] / 1e9:.2f}B) vs attention-only "
                f"({params['attention'] / 1e9:.2f}B, {twin_cfg['hybrid_override_pattern'].count('*')} attention "
                "blocks)", ["context", "hybrid MiB", "attn-only MiB", "x", "hybrid GiB total", "attn GiB total"], rows)

    # ---- measured at tiny scale
    tiny_h = dict(entry.tiny)
    tiny_a = attention_only_twin(tiny_h)
    lengths = [64, 256] if args.quick else [128, 256, 512, 1024]
    measured, mrows = [], []
    models = {}
    for key, cfg in (("hybrid", tiny_h), ("attention", tiny_a)):
        lm = LanguageModel(LMConfig.from_hf(cfg))
        lm.init_weights(generator_seed=0)
        models[key] = (lm.eval(), cfg)
    with torch.inference_mode():
        for length in lengths:
            rec = {"context": length}
            for key, (lm, cfg) in models.items():
                cache = lm.new_cache(1)
                ids = torch.randint(3, cfg["vocab_size"], (1, length), generator=torch.Generator().manual_seed(0))
                lm(ids, cache=cache, logits_to_keep=1)
                plan = memory_plan(cfg, length, dtype="float32")
                rec[f"{key}_measured_bytes"] = cache.kv_bytes() + cache.ssm_bytes()
                rec[f"{key}_planned_bytes"] = plan.kv_bytes + plan.ssm_bytes
            rec["ratio_measured"] = rec["attention_measured_bytes"] / rec["hybrid_measured_bytes"]
            measured.append(rec)
            mrows.append([length, rec["hybrid_measured_bytes"] / 1024, rec["hybrid_planned_bytes"] / 1024,
                          rec["attention_measured_bytes"] / 1024, rec["attention_planned_bytes"] / 1024,
                          rec["ratio_measured"]])
    tiny_params = {k: count_parameters(LMConfig.from_hf(c)) for k, (_, c) in models.items()}
    print_table(f"Measured HybridCache per sequence, fp32 tiny models ({tiny_params['hybrid'] / 1e3:.0f}k vs "
                f"{tiny_params['attention'] / 1e3:.0f}k params; planner counts k-1 conv columns, the cache keeps k)",
                ["context", "hybrid KiB", "planned", "attn-only KiB", "planned", "x"], mrows)

    payload = {
        "hybrid": "nano-9b-v2", "attention_only_pattern": twin_cfg["hybrid_override_pattern"], "params": params,
        "planned": planned, "tiny_params": tiny_params, "measured_tiny": measured,
        "summary": {f"cache x (attn-only / hybrid) @{contexts[-1] // 1024}k": planned[-1]["ratio"]},
    }
    write_json("memory", payload)
    plot_lines("memory", "Cache per sequence (bf16 K/V, fp32 SSM)", "context (tokens)", "MiB",
               {"nano-9b-v2 (hybrid)": (contexts, [p["hybrid_cache_bytes"] / MIB for p in planned]),
                "attention-only, same params": (contexts, [p["attention_cache_bytes"] / MIB for p in planned])},
               logy=True)
    return payload


if __name__ == "__main__":
    main()
