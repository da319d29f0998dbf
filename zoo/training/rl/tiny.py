"""`prepare` hook of the 7B recipes' `tiny:` profiles: a tiny random policy of the entry, saved once.

`zoo.load(ENTRY, tiny=True)` builds the entry's architecture scaled down with a tiny real tokenizer, but its
config carries no `eos_token_id`; the hook writes the tokenizer's eos into the config (so generation stops and the
training core's eos check passes) and saves the model to `model.path`, which the profile points at.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch


def prepare_tiny_policy(cfg: Any, out_root: Path | None) -> None:
    """Write `zoo.load(cfg.model.entry, tiny=True)` to `cfg.model.path` unless it exists."""
    import zoo

    if cfg.model.entry is None or cfg.model.path is None:
        raise ValueError("prepare_tiny_policy needs model.entry (what to build) and model.path (where to save)")
    path = Path(cfg.model.path)
    if (path / "config.json").is_file():
        return
    m = zoo.load(cfg.model.entry, tiny=True, seed=cfg.train.seed, dtype=torch.float32)
    # Save beside the target, patch config.json, then rename: a half-written policy is never picked up.
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    m.save_pretrained(tmp)
    hf = json.loads((tmp / "config.json").read_text())
    hf["eos_token_id"] = m.tokenizer.eos_token_id
    (tmp / "config.json").write_text(json.dumps(hf, indent=1))
    tmp.replace(path)
