"""The GRPO recipe as typed dataclasses: what `recipes/ENTRY/grpo.yaml` serialises.

Loaded with `zoo.training.config.load_config(path, GRPORecipe, tiny=..., overrides=...)`, so every error names
`file:line`. Model, optimizer, schedule and loop settings reuse the training core's dataclasses; the RL parts
(prompt sources and their rewards, rollouts, the loss options, curriculum stages) live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from zoo.training.config import ModelConfig, OptimConfig, ScheduleConfig, TrainConfig


@dataclass
class PromptSource:
    """One JSONL file of prompts with the verifier that scores their responses.

    Rows: `prompt` (chat messages) or `question` (text, one user turn); `answer` (math, MCQ label, open text, or a
    list of calls for tool tasks); `tools` (tool schemas shown in the prompt); `tests` / `fn_name` (code); `task`
    (CrossThink: mcq | open | math); `options`; `thinking` (bool, per-row reasoning switch); `id`.
    """

    name: str
    path: str
    """Relative paths resolve against the recipe file's directory."""
    reward: str
    """math | code | toolcall | crossthink | think_format, or "module:function" taking (response, row)."""
    thinking: bool | None = None
    """Reasoning on/off for every prompt of the source (the chat format's own switch); None = the row's or the
    format's default."""
    format_reward: bool = False
    """Llama-Nemotron: add the think-format reward (`<think>` tags iff thinking is on) to the accuracy reward."""
    chat_format: str | None = None
    """Markup of tool calls for the `toolcall` reward; default: the model's chat format."""
    require_think: bool = True
    """Tool-N1/CrossThink: the reward demands `<think>...</think>` (the papers' rule)."""


@dataclass
class EntropyProbeConfig:
    """AceReason-1.1 rule: pick the training temperature whose token entropy is closest to `target`."""

    target: float = 0.3
    candidates: list[float] = field(default_factory=lambda: [0.6, 0.7, 0.8, 0.85, 0.9, 1.0, 1.1, 1.2])
    prompts: int = 16
    """Prompts sampled once per candidate (the probe run)."""
    max_new_tokens: int = 256


@dataclass
class RolloutConfig:
    """Sampling of G responses per prompt with the built-in batched generator (`zoo.generate`)."""

    prompts_per_step: int = 128
    """Prompts per rollout batch (AceReason: 128; Tool-N1: 1024)."""
    group_size: int = 8
    """G responses per prompt (AceReason: 8, later 16; Tool-N1: 5)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 8192
    """Response-length budget; curriculum stages override it."""
    batch_size: int = 64
    """Sequences decoded together (memory knob; results do not depend on it for a fixed seed per chunk)."""
    entropy_probe: EntropyProbeConfig | None = None
    """When set, a short probe before training replaces `temperature` (logged in the metrics)."""

    def __post_init__(self) -> None:
        if self.prompts_per_step < 1 or self.group_size < 2 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("prompts_per_step, batch_size, max_new_tokens must be >= 1 and group_size >= 2 "
                             "(a group of one has no baseline)")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"sampling needs temperature > 0 and 0 < top_p <= 1, got {self.temperature}, "
                             f"{self.top_p}")


@dataclass
class AlgoConfig:
    """The GRPO objective and the published rules, each switchable."""

    ppo_epochs: int = 1
    """Passes over each rollout batch."""
    mini_batches: int = 1
    """Optimizer steps per pass (the batch is split); ppo_epochs = mini_batches = 1 is strictly on-policy
    (AceReason); LN-Ultra takes 2 optimizer steps per rollout."""
    clip_eps: float = 0.2
    """PPO ratio clip (lower side); only bites off-policy (ratio = 1 on the first update)."""
    clip_eps_high: float | None = None
    """Upper clip; None = clip_eps (symmetric)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL estimate to the frozen initial policy, added to the loss (Tool-N1 and CrossThink:
    1e-3; AceReason: 0)."""
    entropy_coef: float = 0.0
    """Entropy bonus weight (0 in every published recipe here)."""
    std_normalize: bool = True
    """A = (r - mean) / std per group; False keeps r - mean (Dr. GRPO style, not a published Nemotron rule)."""
    drop_equal_groups: bool = True
    """Groups whose rewards are all equal carry no signal: drop them from the batch (and its token count)."""
    overlong_filter: bool = False
    """Truncated responses are masked out of the loss instead of counting as reward 0 (AceReason-1.1: on at 8K
    and 16K, off at 32K); curriculum stages override it."""
    remove_solved: bool = False
    """Epoch-wise removal of prompts that every rollout of the epoch solved (AceReason code stage 2)."""

    def __post_init__(self) -> None:
        if self.ppo_epochs < 1 or self.mini_batches < 1:
            raise ValueError("ppo_epochs and mini_batches must be >= 1")
        if not 0 < self.clip_eps < 1 or (self.clip_eps_high is not None and self.clip_eps_high <= 0):
            raise ValueError(f"clip_eps must be in (0, 1) and clip_eps_high > 0, got {self.clip_eps}, "
                             f"{self.clip_eps_high}")
        if self.kl_coef < 0 or self.entropy_coef < 0:
            raise ValueError("kl_coef and entropy_coef must be >= 0")


@dataclass
class StageConfig:
    """One curriculum stage: a run of steps with its own prompts and budgets (None = the recipe-wide value)."""

    name: str
    steps: int
    sources: list[str] = field(default_factory=list)
    """Prompt sources of this stage (math-only then code-only); empty = all."""
    max_new_tokens: int | None = None
    """Response-length curriculum: 8K -> 16K -> 24K -> 32K (AceReason)."""
    temperature: float | None = None
    group_size: int | None = None
    overlong_filter: bool | None = None
    remove_solved: bool | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"stage {self.name}: steps must be >= 1")


@dataclass
class GRPORecipe:
    """A GRPO stage: the argument of `zoo.training.grpo.grpo`."""

    stage: Literal["grpo"]
    model: ModelConfig
    prompts: list[PromptSource]
    train: TrainConfig
    """`steps` = rollout steps (the sum of the curriculum stages' steps); `micro_batch_size` = sequences per
    forward in the loss; `grad_accum` is unused (a mini-batch is accumulated whole)."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    stages: list[StageConfig] = field(default_factory=list)
    """Curriculum; empty = one stage over every source for `train.steps`."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-6, min_lr=1e-6, weight_decay=0.0))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(kind="constant"))
    chat_format: str | None = None
    """Built-in chat format for prompts when the checkpoint has no chat template and records no format (e.g. a
    nano-tiny stage output); None = the model's own."""
    description: str = ""
    paper: str = ""
    prepare: str | None = None
    """"module:function" called with (cfg, out_root) first (e.g. to write synthetic prompts)."""
    after: str | None = None
    """"module:function" called with (cfg, out_root, final_dir) after the export (e.g. held-out evaluation)."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.prompts]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"prompts need at least one source and unique names, got {names}")
        if not self.stages:
            self.stages = [StageConfig(name="rl", steps=self.train.steps)]
        total = sum(s.steps for s in self.stages)
        if total != self.train.steps:
            raise ValueError(f"train.steps ({self.train.steps}) must equal the sum of the stages' steps ({total})")
        for s in self.stages:
            unknown = set(s.sources) - set(names)
            if unknown:
                raise ValueError(f"stage {s.name} names unknown prompt sources {sorted(unknown)}; known: {names}")
