"""nemotron-zoo: a PyTorch model zoo for NVIDIA's Nemotron family.

    import zoo
    zoo.list_models()
    m = zoo.load("nano-9b-v2")                      # hub -> native model + tokenizer
    m = zoo.load("nano-9b-v2", tiny=True, seed=0)   # same block pattern, tiny, random weights
    reply = m.chat("Solve 2x+3=7 /think", thinking_budget=512)
"""

from __future__ import annotations

import importlib
from typing import Any

from zoo.loading import load
from zoo.registry import get_entry, list_models

__version__ = "0.1.0"

# Public names provided by modules that are imported on first use (keeps `import zoo` light).
_LAZY = {"memory_plan": "zoo.memory", "max_context": "zoo.memory", "MemoryPlan": "zoo.memory"}


def info(name: str) -> dict[str, Any]:
    """Entry metadata, full-size config and parameter count, without loading weights."""
    from zoo.loading import describe

    return describe(name)


def create(name: str, *, seed: int = 0, **kw: Any):
    """Random-weight tiny variant of an entry (same as `load(name, tiny=True)`)."""
    return load(name, tiny=True, seed=seed, **kw)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = ["create", "get_entry", "info", "list_models", "load", "max_context", "memory_plan"]
