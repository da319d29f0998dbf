"""The eval task registry: a task turns one JSONL row plus a model response into a score.

`zoo eval TASK` looks tasks up here, so other areas register their own (the audio engineer registers ``aqa``)
without touching the runner::

    from zoo.eval.tasks import Task, register_task
    register_task("aqa", Task(prompt=..., score=...))

A task is two plain functions: ``prompt(row) -> messages`` (chat messages, or a str for one user turn) and
``score(row, response) -> float``; ``tools(row)`` optionally returns tool schemas for the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError

__all__ = ["Task", "register_task", "get_task", "task_names", "RowError"]

Row = Mapping[str, Any]


class RowError(ZooError):
    """A JSONL row lacks a field its task needs (the runner adds the file and line)."""


@dataclass(frozen=True)
class Task:
    """How to prompt for and score one row.

    Attributes:
        prompt: Row -> chat messages (or one user message as a str).
        score: (row, response text) -> reward in [0, 1].
        tools: Row -> tool schemas for the prompt, or None.
        description: One line for ``zoo eval --help``.
    """

    prompt: Callable[[Row], str | Sequence[Mapping[str, Any]]]
    score: Callable[[Row, str], float]
    tools: Callable[[Row], Sequence[Mapping[str, Any]] | None] | None = None
    description: str = ""


_TASKS: dict[str, Task] = {}
# Modules that register tasks when imported: other areas add theirs here (one line) or register at import.
_PROVIDERS: tuple[str, ...] = ("zoo.eval.builtin_tasks",)


def register_task(name: str, task: Task | Callable[..., Any], **kw: Any) -> None:
    """Register a task under ``name`` (a `Task`, or a bare ``score(row, response)`` plus ``prompt=`` keyword)."""
    if not isinstance(task, Task):
        task = Task(score=task, **kw)
    _TASKS[name] = task


def _load_providers() -> None:
    import importlib

    for mod in _PROVIDERS:
        importlib.import_module(mod)


def get_task(name: str) -> Task:
    """The task registered under ``name``."""
    _load_providers()
    if name not in _TASKS:
        raise ZooError(f"unknown eval task {name!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def task_names() -> list[str]:
    """Names of every registered task."""
    _load_providers()
    return sorted(_TASKS)


def field(row: Row, key: str) -> Any:
    """``row[key]``, or a `RowError` naming the missing field."""
    if key not in row:
        raise RowError(f"missing field {key!r}")
    return row[key]
