"""Typed multimodal recipe configs (`recipes/eagle2.5-8b/sft.yaml`, `recipes/qwen2-audio-7b/aqa.yaml`,
`recipes/nano-vl-tiny/*.yaml`, `recipes/nano-audio-tiny/*.yaml`), loaded with `zoo.training.config.load_config`.

A recipe is a list of stages run in order on one model; each stage has its own max length (the ADS budget and the
packed-row length), step count, learning rate and trainable parts (Eagle 2.5's progressive 32K -> 64K -> 128K
schedule is three stages). Optimiser, schedule shape and loop settings are the training core's own dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from zoo.training.config import OptimConfig, ScheduleConfig, TrainConfig
from zoo.training.multimodal.towers import PARTS

__all__ = ["MMDataConfig", "MMEvalConfig", "MMModelConfig", "MMRecipeConfig", "MMStageConfig"]


@dataclass
class MMModelConfig:
    """The model: a registry entry (optionally tiny random init) or a local HF-format directory."""

    entry: str | None = None
    path: str | None = None
    """Continue from these weights; wins over `entry`."""
    tiny: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.entry is None and self.path is None:
            raise ValueError("model needs entry or path")


@dataclass
class MMDataConfig:
    """Where samples come from and how they are packed."""

    source: Literal["vision_tasks", "vision_jsonl", "aqa_synthetic", "aqa_files"]
    """vision_tasks / aqa_synthetic: the generated sets (endless, seeded); vision_jsonl: conversations with media
    paths ({"messages", "images", "videos"} per line); aqa_files: a DCASE-format AQA file or directory."""
    path: str | None = None
    """File or directory for vision_jsonl / aqa_files."""
    tasks: list[str] = field(default_factory=list)
    """Generated tasks to draw uniformly (empty: all)."""
    rows: int = 8
    """Packed rows per optimizer step."""
    pack_buffer: int = 32
    """Samples buffered for length-balanced packing (more: better balance, more memory)."""
    shuffle_answers: bool = True
    """Show multiple-choice options in a fresh random order for every drawn question."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source in ("vision_jsonl", "aqa_files") and not self.path:
            raise ValueError(f"data.source {self.source} needs data.path")
        if self.rows < 1 or self.pack_buffer < self.rows:
            raise ValueError("need rows >= 1 and pack_buffer >= rows")


@dataclass
class MMStageConfig:
    """One stage of a progressive schedule."""

    name: str
    max_len: int
    """Stage length: every sample is ADS-fitted to it and rows are packed up to it."""
    steps: int
    lr: float | None = None
    """Peak LR of this stage (default: optim.lr)."""
    trainable: list[str] = field(default_factory=lambda: ["vision", "audio", "projector", "language"])
    """Parts that train (vision, audio, projector, language); parts the model lacks are ignored."""

    def __post_init__(self) -> None:
        if self.max_len < 16 or self.steps < 1:
            raise ValueError(f"stage {self.name}: need max_len >= 16 and steps >= 1")
        unknown = set(self.trainable) - set(PARTS)
        if unknown:
            raise ValueError(f"stage {self.name}: unknown trainable parts {sorted(unknown)}; known: {sorted(PARTS)}")


@dataclass
class MMEvalConfig:
    """Held-out evaluation after the last stage (generated sets only)."""

    n_per_task: int = 50
    seed: int = 12345
    """Held-out seed: disjoint from the training stream's seed."""
    k: int = 8
    """AQA: shuffled permutations per question (the DCASE harness)."""


@dataclass
class MMRecipeConfig:
    """A multimodal SFT recipe: model, data, progressive stages, optimiser."""

    stage: Literal["mm-sft", "aqa"]
    model: MMModelConfig
    data: MMDataConfig
    stages: list[MMStageConfig]
    train: TrainConfig
    description: str = ""
    paper: str = ""
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: MMEvalConfig | None = None
    export: str | None = None
    """Directory for the final HF-format model (default {out}/final)."""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages must list at least one stage")
        if self.train.micro_batch_size * self.train.grad_accum != self.data.rows:  # one process: no sharding
            raise ValueError(f"data.rows ({self.data.rows}) must equal train.micro_batch_size * train.grad_accum "
                             f"({self.train.micro_batch_size * self.train.grad_accum})")
        total = sum(s.steps for s in self.stages)
        if self.train.steps != total:  # per-stage steps drive the loop; train.steps states the total (model cards)
            raise ValueError(f"train.steps ({self.train.steps}) must equal the sum of the stages' steps ({total})")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        for s in self.stages:
            if self.schedule.kind != "constant" and self.schedule.warmup_steps >= s.steps:
                raise ValueError(f"schedule.warmup_steps ({self.schedule.warmup_steps}) must be < the steps of "
                                 f"stage {s.name} ({s.steps})")
