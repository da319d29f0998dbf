"""Reward functions for RL: thin adapters from the `zoo.eval` verifiers, plus the Llama-Nemotron format reward.

A reward function takes `(response, row)`: the assistant text (with any `<think>` pre-fill of the prompt put back
in front, so format rules see the whole turn) and the prompt's JSONL row; it returns a float (1.0 / 0.0 for
every verifier here). Verifiers live in `zoo.eval` and never import training code; these adapters only read the
row's fields and raise `RewardError` naming the missing one.

Names: `math`, `code`, `toolcall`, `crossthink`, `think_format`, or `"module:function"` for your own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zoo.errors import ZooError
from zoo.training.config import import_ref

RewardFn = Callable[[str, Mapping[str, Any]], float]

__all__ = ["RewardFn", "RewardError", "get_reward", "register_reward", "need"]


class RewardError(ZooError):
    """A prompt row lacks what its reward needs, or a reward name is unknown."""


def need(row: Mapping[str, Any], key: str) -> Any:
    """`row[key]`, or a `RewardError` naming the field (the caller adds file:line)."""
    if key not in row or row[key] is None:
        raise RewardError(f"missing field {key!r} (needed by its reward)")
    return row[key]


_BUILTIN = {
    "math": "zoo.training.rewards.math:reward",
    "code": "zoo.training.rewards.code:reward",
    "toolcall": "zoo.training.rewards.toolcall:reward",
    "crossthink": "zoo.training.rewards.crossthink:reward",
    "think_format": "zoo.training.rewards.think_format:reward",
}
_REGISTERED: dict[str, RewardFn] = {}


def register_reward(name: str, fn: RewardFn) -> None:
    """Make `fn` available under `name` (tests, notebooks); recipes can also name "module:function"."""
    _REGISTERED[name] = fn


def get_reward(name: str) -> RewardFn:
    """The reward function for a recipe's `reward:` value."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTIN.get(name, name)
    if ":" not in target:
        raise RewardError(f"unknown reward {name!r}; built in: {', '.join(_BUILTIN)}, or 'module:function'")
    return import_ref(target, f"reward {name!r}", RewardError)
