"""The zoo registry: named entries (weights) pointing at architectures (model_type -> class).

Architecture and weights are separate axes (timm `arch.tag`, open_clip `_PRETRAINED`): an entry names a hub repo,
its full-size config.json contents, a tiny config with the same block-pattern shape, and what is needed to *use* the
weights (chat format, license, paper). Model classes are looked up by the config's `model_type`, never by names.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, UnknownModelError

# model_type (config.json) -> "module:Class"; the class implements the ZooModel protocol (docs/internals.md).
ARCHITECTURES: dict[str, str] = {
    "nemotron_h": "zoo.modeling:CausalLM",
    "llama": "zoo.modeling:CausalLM",
    "qwen2": "zoo.modeling:CausalLM",
    "nemotron-nas": "zoo.modeling:CausalLM",
    "eagle_2_5_vl": "zoo.vision.model:EagleVLModel",
    "qwen2_audio": "zoo.audio.model:AudioLanguageModel",
}


@dataclass(frozen=True)
class Entry:
    """One named model in the zoo.

    Attributes:
        name: registry name (`zoo.load(name)`).
        family: upstream `model_type` of the checkpoint.
        description: one line for `zoo list` and the model card.
        hub_repo: Hugging Face repo id ("" for entries shipped inside the package).
        revision: pinned hub revision (None = main).
        config: full-size config.json contents (for info, memory planning, cards); the checkpoint's own file wins.
        tiny: config.json contents of a tiny variant with the same block-pattern shape (random weights).
        chat_format: built-in chat format used when the checkpoint ships no chat template.
        paper: arXiv id or URL list; license: SPDX-like id or name; recipes: recipe stages shipped for it.
        local_dir: package-relative directory holding shipped weights (for embedded entries such as nano-tiny).
        base_model: lineage (hub repo or entry this one was trained from).
        results: evaluation numbers to print in the model card {benchmark: value}.
    """

    name: str
    family: str
    description: str
    hub_repo: str = ""
    revision: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    chat_format: str | None = None
    paper: tuple[str, ...] = ()
    license: str = "other"
    recipes: tuple[str, ...] = ()
    local_dir: str | None = None
    base_model: str | None = None
    tags: tuple[str, ...] = ()
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def local_path(self) -> Path | None:
        if self.local_dir is None:
            return None
        return Path(__file__).parent / self.local_dir


_ENTRIES: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def register(entry: Entry, aliases: tuple[str, ...] = ()) -> Entry:
    if entry.name in _ENTRIES:
        raise ConfigError(f"registry: entry {entry.name!r} registered twice")
    _ENTRIES[entry.name] = entry
    for a in aliases:
        _ALIASES[a] = entry.name
    return entry


def _ensure_catalog() -> None:
    importlib.import_module("zoo.catalog")


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a wildcard pattern, sorted."""
    _ensure_catalog()
    return sorted(n for n in _ENTRIES if fnmatch.fnmatchcase(n, pattern))


def get_entry(name: str) -> Entry:
    """The entry called `name` (or an alias); raises UnknownModelError suggesting close names."""
    _ensure_catalog()
    name = _ALIASES.get(name, name)
    if name in _ENTRIES:
        return _ENTRIES[name]
    close = difflib.get_close_matches(name, list(_ENTRIES), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see `zoo list`"
    raise UnknownModelError(f"{name!r} is neither a zoo entry nor an existing directory{hint}")


def has_entry(name: str) -> bool:
    _ensure_catalog()
    return _ALIASES.get(name, name) in _ENTRIES


def architecture_class(model_type: str | None, source: str = "config.json") -> type:
    """Model class for a config's `model_type`."""
    if model_type not in ARCHITECTURES:
        raise ConfigError(f"{source}: unknown model_type {model_type!r}; supported: {', '.join(sorted(ARCHITECTURES))}")
    module, cls = ARCHITECTURES[model_type].split(":")
    return getattr(importlib.import_module(module), cls)
