"""`zoo.load` and `save_pretrained`: name or path -> files -> native model (+ tokenizer), and back.

Resolution order: an existing directory; a registry entry (tiny=True builds it from the entry's tiny config with
random weights, no download; an embedded entry loads from package data; otherwise the hub snapshot).
Models are built on the `meta` device and materialised once in the target dtype, then filled tensor by tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo import hub
from zoo.errors import CheckpointError, ConfigError, UnknownModelError
from zoo.registry import Entry, architecture_class, get_entry, has_entry

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
ZOO_META = "zoo.json"  # what zoo knows beyond config.json: chat format, entry, lineage


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r} (use float32, bfloat16 or float16)") from None


def _config_dtype(hf: dict) -> torch.dtype:
    name = hf.get("torch_dtype") or hf.get("dtype") or "float32"
    return _dtype(name) if name in ("float32", "bfloat16", "float16") else torch.float32


def _reset_derived(model: nn.Module) -> None:
    """Recompute non-persistent buffers and weight ties after materialising from `meta`."""
    for m in model.modules():
        if hasattr(m, "reset_derived_buffers"):
            m.reset_derived_buffers()


def build_model(hf: dict[str, Any], *, source: str, dtype: torch.dtype, device: torch.device | str,
                seed: int | None) -> nn.Module:
    """Build the architecture for config dict `hf`; random init when `seed` is given, else uninitialised."""
    cls = architecture_class(hf.get("model_type"), source)
    with torch.device("meta"):
        model = cls.from_hf_config(hf)
    model = model.to(dtype=dtype).to_empty(device=device)
    _reset_derived(model)
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.init_weights()
    return model


def load_tokenizer(path: Path):
    """AutoTokenizer for a checkpoint dir, or None when it has no tokenizer files."""
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok_cfg = hub.read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").exists() else {}
    generic = tok_cfg.get("tokenizer_class") in (None, "PreTrainedTokenizerFast", "TokenizersBackend")
    try:
        if generic and (path / "tokenizer.json").exists():
            # A plain tokenizer.json: load it as written. AutoTokenizer would consult config.json's model_type and
            # either fail (nemotron-nas is unknown to transformers) or swap in a family class whose pre-tokenizer
            # differs from the file (qwen2).
            return PreTrainedTokenizerFast.from_pretrained(str(path))
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: cannot load the tokenizer ({type(e).__name__}: {e})") from None


def load_directory(path: str | Path, *, dtype: torch.dtype | None = None, device: str | torch.device | None = None,
                   entry: Entry | None = None) -> nn.Module:
    """Load a local HF-format checkpoint directory."""
    path = Path(path)
    hf = hub.read_json(path / "config.json")
    meta = hub.read_json(path / ZOO_META) if (path / ZOO_META).exists() else {}
    target_dtype = dtype or _config_dtype(hf)
    model = build_model(hf, source=str(path / "config.json"), dtype=target_dtype, device=device or "cpu", seed=None)
    reader = hub.SafetensorsReader(path)
    try:
        hub.load_weights(model, model.hf_key_map(), reader)
    finally:
        reader.close()
    model.tokenizer = load_tokenizer(path)
    if hasattr(model, "load_processor"):
        model.load_processor(path)
    model.entry = entry
    model.chat_format = meta.get("chat_format") or (entry.chat_format if entry else None)
    model.lineage = meta.get("lineage")
    model.source_dir = path
    return model.eval()


def load(name_or_path: str | Path, *, tiny: bool = False, seed: int = 0, dtype: str | torch.dtype | None = None,
         device: str | torch.device | None = None, revision: str | None = None) -> nn.Module:
    """Load a zoo entry or a local HF-format directory as a native model (see module docstring)."""
    dt = _dtype(dtype)
    path = Path(name_or_path)
    if not tiny and path.is_dir():
        return load_directory(path, dtype=dt, device=device)
    name = str(name_or_path)
    if not has_entry(name):
        if path.exists() and not path.is_dir():
            raise UnknownModelError(f"{name!r} is a file; zoo.load expects a checkpoint directory or an entry name")
        get_entry(name)  # raises with suggestions
    entry = get_entry(name)
    if tiny:
        if not entry.tiny:
            raise ConfigError(f"entry {entry.name!r} has no tiny config")
        model = build_model(entry.tiny, source=f"{entry.name} (tiny)", dtype=dt or torch.float32,
                            device=device or "cpu", seed=seed)
        model.entry, model.chat_format, model.lineage = entry, entry.chat_format, None
        model.tokenizer = _tiny_tokenizer(entry, model)
        if hasattr(model, "tiny_processor"):
            model.tiny_processor()
        return model.eval()
    if entry.local_path is not None:
        if not (entry.local_path / "config.json").exists():
            raise CheckpointError(f"entry {entry.name!r}: shipped weights are missing from {entry.local_path}")
        return load_directory(entry.local_path, dtype=dt, device=device, entry=entry)
    snapshot = hub.download(entry.hub_repo, revision or entry.revision, name=entry.name)
    return load_directory(snapshot, dtype=dt, device=device, entry=entry)


def _tiny_tokenizer(entry: Entry, model: nn.Module):
    """A small real tokenizer with the entry's chat-format special tokens, when it fits the tiny vocabulary."""
    try:
        from zoo.tokenizers import tiny_tokenizer
    except ImportError:
        return None
    vocab = entry.tiny.get("vocab_size") or entry.tiny.get("text_config", {}).get("vocab_size") or 0
    if vocab < 512:
        return None
    return tiny_tokenizer(entry.chat_format or "chatml", vocab_size=512)


def save_pretrained(model: nn.Module, path: str | Path, *, dtype: str | torch.dtype | None = None,
                    max_shard_size: int = 5 * 1024**3, lineage: dict[str, Any] | None = None) -> Path:
    """Write `model` in the upstream HF layout (config.json, safetensors shards + index, tokenizer, zoo.json).

    Atomic: everything is written to a temporary directory that replaces `path` only when complete.
    """
    path = Path(path)
    dt = _dtype(dtype)
    hf = model.export_hf_config() if hasattr(model, "export_hf_config") else dict(model.hf_config)
    if dt is not None:
        hf["torch_dtype"] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dt]
    else:
        hf["torch_dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    with hub.AtomicDirectory(path) as tmp:
        hub.write_json(tmp / "config.json", hf)
        hub.write_safetensors(hub.hf_state_dict(model, model.hf_key_map()), tmp, max_shard_bytes=max_shard_size,
                              dtype=dt)
        gen = {k: hf[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if hf.get(k) is not None}
        if gen:
            hub.write_json(tmp / "generation_config.json", {**gen, "_from_model_config": True})
        if getattr(model, "tokenizer", None) is not None:
            model.tokenizer.save_pretrained(str(tmp))
        if hasattr(model, "save_processor"):
            model.save_processor(tmp)
        meta = {"chat_format": getattr(model, "chat_format", None),
                "entry": model.entry.name if getattr(model, "entry", None) is not None else None,
                "lineage": lineage or getattr(model, "lineage", None)}
        hub.write_json(tmp / ZOO_META, meta)
    return path


def describe(name: str) -> dict[str, Any]:
    """Info about an entry (no weights loaded)."""
    e = get_entry(name)
    return {"name": e.name, "family": e.family, "hub_repo": e.hub_repo, "revision": e.revision,
            "chat_format": e.chat_format, "license": e.license, "paper": list(e.paper),
            "description": e.description, "recipes": list(e.recipes), "config": json.loads(json.dumps(e.config))}
