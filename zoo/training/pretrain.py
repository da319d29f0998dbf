"""Pretraining entrypoint: `pretrain(cfg)` for a `RecipeConfig` with `stage: pretrain`.

The published recipes this runs (algorithms sheet 4):
- Nemotron-H: AdamW (0.9, 0.95), wd 0.1, cosine decay to 1% of peak, FP8 hybrid (E4M3 weights/activations,
  E5M2 gradients) with per-tensor current scaling, first/last 4 layers in BF16, phased data curriculum.
- Nano-12B-v2-Base: WSD schedule (stable 4.5e-4, floor 4.5e-6), curriculum switches at 60% and 90% of tokens.

Documents are `bos + text + eos` token runs packed into full rows; a document may continue into the next row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import ConfigError
from zoo.training import loop
from zoo.training.config import RecipeConfig, SourceConfig
from zoo.training.data import Document, read_rows, tokenize_texts
from zoo.training.stage import run_stage


def text_documents(source: SourceConfig, tokenizer: Any, cfg: RecipeConfig) -> list[Document]:
    """Tokenize one source's text column: `tokenizer.encode(text)` (adds bos when the tokenizer does) + eos."""
    return tokenize_texts(read_rows(source.path, source.field), tokenizer.encode, tokenizer.eos_token_id)


def pretrain(cfg: RecipeConfig, *, resume: bool = False, stop_after: int | None = None,
             out_root: str | Path | None = None) -> loop.FitResult:
    """Run a pretraining stage; the trained model lands in `cfg.train.out_dir/final` (HF layout).

    Args:
        cfg: A recipe with `stage: pretrain`.
        resume: Continue from the newest checkpoint in `cfg.train.out_dir`.
        stop_after: Stop after this many steps (simulated kill for tests).
        out_root: The recipe's run root (for its `prepare` hook).
    """
    if cfg.stage != "pretrain":
        raise ConfigError(f"pretrain() got a recipe for stage {cfg.stage!r}")
    return run_stage(cfg, text_documents, resume=resume, stop_after=stop_after, out_root=out_root, split_docs=True)
