"""What every pretrain/SFT stage does around the loop: build, blend, shard, fit, export.

`run_stage(cfg, make_docs, ...)` is shared by `pretrain.pretrain` and `sft.sft`; they differ only in how a source
file becomes token documents (`make_docs`) and in SFT's LoRA wrapping. The steps:

    distributed.setup -> seed -> model + tokenizer -> (prepare hook) -> documents per source -> BlendSampler
    -> PackedBatches -> [FP8 conversion] -> [LoRA] -> [FSDP2] -> AdamW -> loop.fit -> export OUT/final (HF format)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ConfigError
from zoo.training import distributed, loop
from zoo.training.config import ModelConfig, RecipeConfig, SourceConfig, import_ref
from zoo.training.data import BlendSampler, Document, PackedBatches
from zoo.training.optim import build_optimizer

FINAL = "final"


# ----------------------------------------------------------------------------------------------------------------
# Model and tokenizer


def build_model(cfg: ModelConfig, seed: int) -> nn.Module:
    """The model to train, fp32 master weights, train mode.

    `hf_config` builds from scratch (random init from `seed`), `path` continues from a local HF directory, `entry`
    loads a registry entry (`tiny: true`: its tiny random-init variant).
    """
    import zoo
    from zoo.loading import build_model as _build

    if cfg.hf_config is not None:
        model = _build(cfg.hf_config, source="recipe model.hf_config", dtype=torch.float32, device="cpu", seed=seed)
        model.tokenizer, model.chat_format, model.entry, model.lineage = None, None, None, None
    elif cfg.entry is not None and cfg.from_scratch and not cfg.tiny:
        from zoo.registry import get_entry

        entry = get_entry(cfg.entry)
        model = _build(entry.config, source=f"{entry.name} (from scratch)", dtype=torch.float32, device="cpu",
                       seed=seed)
        model.tokenizer, model.chat_format, model.entry, model.lineage = None, entry.chat_format, entry, None
    elif cfg.path is not None:
        if not Path(cfg.path).is_dir():
            raise ConfigError(f"model.path {cfg.path}: not a directory (did the previous stage run?)")
        model = zoo.load(cfg.path, dtype=torch.float32)
    else:
        model = zoo.load(cfg.entry, tiny=cfg.tiny, seed=seed, dtype=torch.float32)
    if cfg.tokenizer is not None:
        from transformers import AutoTokenizer

        if not Path(cfg.tokenizer).is_dir():
            raise ConfigError(f"model.tokenizer {cfg.tokenizer}: not a directory")
        model.tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
    if model.tokenizer is None:
        raise ConfigError("the model has no tokenizer; set model.tokenizer to a directory with tokenizer.json")
    if len(model.tokenizer) > model.config.vocab_size:
        raise ConfigError(f"tokenizer has {len(model.tokenizer)} tokens but the model's vocab_size is "
                          f"{model.config.vocab_size}")
    eos = model.tokenizer.eos_token_id
    if cfg.hf_config is not None and eos is not None and eos not in model.config.eos_token_ids:
        # A from-scratch config written next to a freshly trained tokenizer: they must agree.
        raise ConfigError(f"the tokenizer's eos {model.tokenizer.eos_token!r} is id {eos}, but model.hf_config's "
                          f"eos_token_id is {model.config.eos_token_ids}")
    return model.train()


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold peft LoRA adapters into their base layers and put the plain layers back (for export)."""
    from peft.tuners.lora import LoraLayer

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                child.merge()
                setattr(parent, name, child.get_base_layer())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def add_lora(model: nn.Module, rank: int, alpha: float, dropout: float, targets: list[str]) -> nn.Module:
    """Inject LoRA adapters (peft) into the matching Linear layers; everything else is frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    use = [t for t in targets if t in present]
    if not use:
        raise ConfigError(f"model.lora.target_modules {targets} match no Linear layer; the model has {sorted(present)}")
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=use), model)
    for n, p in model.named_parameters():
        p.requires_grad_("lora_" in n)
    return model


# ----------------------------------------------------------------------------------------------------------------
# The stage


def _call_prepare(cfg: RecipeConfig, out_root: Path | None) -> None:
    if cfg.prepare is not None:
        import_ref(cfg.prepare, "prepare")(cfg, out_root)


def run_stage(cfg: RecipeConfig, make_docs: Callable[[SourceConfig, Any, RecipeConfig], list[Document]], *,
              resume: bool = False, stop_after: int | None = None, out_root: str | Path | None = None,
              loss_fn: loop.LossFn = loop.causal_lm_loss, split_docs: bool = True,
              on_step: Callable[[int, dict[str, float]], None] | None = None) -> loop.FitResult:
    """Run one recipe stage end to end and export `train.out_dir/final` (upstream HF layout + tokenizer).

    Args:
        cfg: The validated recipe.
        make_docs: Source -> token documents, given (source, tokenizer, cfg).
        resume: Continue from the newest checkpoint of `train.out_dir`.
        stop_after: Stop after this many steps (tests of kill-and-resume); no export then.
        out_root: Passed to the recipe's `prepare` hook.
        loss_fn: Per micro-batch loss (default next-token CE on the pre-shifted labels).
        split_docs: Packed rows may continue a document into the next row (pretraining) or not (SFT).
        on_step: Forwarded to `loop.fit`.
    """
    rank, world = distributed.setup()
    t = cfg.train
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    torch.manual_seed(t.seed)
    _call_prepare(cfg, Path(out_root) if out_root is not None else None)
    model = build_model(cfg.model, t.seed)
    tok = model.tokenizer
    sources = {s.name: make_docs(s, tok, cfg) for s in cfg.data.sources}
    rows = t.micro_batch_size * t.grad_accum * world
    total_tokens = t.steps * rows * cfg.data.seq_len
    phases = [(p.start, p.weights) for p in cfg.data.phases]
    sampler = BlendSampler(sources, phases, total_tokens, seed=t.seed)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    batches = PackedBatches(sampler, cfg.data.seq_len, rows, pack=cfg.data.pack, split_docs=split_docs, pad_id=pad)
    if cfg.fp8.enabled:
        from zoo.kernels.fp8 import convert_to_fp8

        done = convert_to_fp8(model, bf16_first=cfg.fp8.bf16_first, bf16_last=cfg.fp8.bf16_last,
                              recipe=cfg.fp8.recipe, emulate=cfg.fp8.emulate)
        if rank == 0:
            print(f"fp8: blocks {done[0] if done else '-'}..{done[-1] if done else '-'} in FP8 "
                  f"({cfg.fp8.recipe}), {len(model.blocks) - len(done)} kept in high precision", file=sys.stderr)
    if cfg.model.lora is not None:
        lc = cfg.model.lora
        add_lora(model, lc.rank, lc.alpha, lc.dropout, lc.target_modules)
    if t.fsdp and world > 1:
        distributed.shard(model)
    opt = build_optimizer(model, cfg.optim)
    out = Path(t.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1, default=str))
        n = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{cfg.stage}: {n / 1e6:.2f}M parameters ({n_train / 1e6:.2f}M trained), "
              f"{sum(len(d) for d in sources.values())} documents, {t.steps} steps x {rows} rows x "
              f"{cfg.data.seq_len} tokens, world {world}", file=sys.stderr)
    res = loop.fit(model, opt, batches, loss_fn=loss_fn, train=t, optim=cfg.optim, schedule=cfg.schedule,
                   resume=resume, stop_after=stop_after, on_step=on_step)
    if cfg.sft is not None:
        model.chat_format = cfg.sft.chat_format  # the format it was tuned on travels with it (zoo.json)
    if stop_after is None or stop_after >= t.steps:
        export(model, out / FINAL, lora=cfg.model.lora is not None)
    return res


def export(model: nn.Module, path: Path, *, lora: bool = False) -> None:
    """Write the trained model in the upstream HF layout (collective under FSDP2; rank 0 writes)."""
    from zoo.training.checkpoint import model_state

    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if any(type(p).__name__ == "DTensor" for p in model.parameters()):
        from zoo.loading import build_model as _build

        full = model_state(model)
        if rank == 0:
            plain = _build(model.hf_config, source="export", dtype=torch.float32, device="cpu", seed=None)
            plain.load_state_dict(full)
            for k in ("tokenizer", "chat_format", "entry", "lineage"):
                setattr(plain, k, getattr(model, k, None))
            model = plain
    if rank == 0:
        if lora:
            merge_lora(model)
        _unwrap_fp8(model)
        model.save_pretrained(path)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _unwrap_fp8(model: nn.Module) -> None:
    # FP8Linear shares its Parameters with a plain Linear's layout; put plain layers back for inference.
    from zoo.kernels.fp8 import FP8Linear

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FP8Linear):
                lin = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None, device="meta")
                lin.weight, lin.bias = child.weight, child.bias
                setattr(parent, name, lin)
