"""Typed recipe configs and their YAML form.

A recipe is one call of a typed entrypoint (`zoo.training.pretrain.pretrain(cfg)`, `zoo.training.sft.sft(cfg)`)
whose argument is a `RecipeConfig`: a tree of frozen-ish dataclasses with attribute docstrings and cross-field
checks in `__post_init__`. Each shipped YAML under `zoo/training/recipes/ENTRY/STAGE.yaml` is a serialisation of
that tree plus an optional `tiny:` mapping, a partial tree deep-merged over the full one to get a profile that
runs on a laptop CPU.

Design choices:
- Parsing walks the YAML *node* graph (`yaml.compose`), not the plain dict, so every error names the file and the
  line of the offending key (unknown field, wrong type, failed check).
- No registry of component names: the stage (`pretrain` | `sft`) picks the entrypoint; everything else is data.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from zoo.errors import ConfigError

# ----------------------------------------------------------------------------------------------------------------
# Config dataclasses


@dataclass
class LoRAConfig:
    """Low-rank adapters through `peft` (full fine-tuning when absent)."""

    rank: int = 16
    """Adapter rank r."""
    alpha: float = 32.0
    """Scale numerator: the update is (alpha / r) * B @ A."""
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["in_proj", "out_proj", "q_proj", "k_proj", "v_proj",
                                                               "o_proj", "up_proj", "down_proj", "gate_proj"])
    """Module-name suffixes that get adapters; names absent from the model are ignored by peft."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}")


@dataclass
class ModelConfig:
    """Which model to train: a registry entry (optionally its tiny random-init variant) or a local HF directory."""

    entry: str | None = None
    """A `zoo.list_models()` name; with `tiny: true` the same pattern, scaled down, random init."""
    path: str | None = None
    """A local HF-format directory (continues from these weights); wins over `entry`."""
    tiny: bool = False
    from_scratch: bool = False
    """Random-init the entry's full-size architecture (pretraining) instead of downloading its weights."""
    hf_config: dict[str, Any] | None = None
    """A full upstream config.json (nemotron_h, llama, ...) for a from-scratch model; wins over entry and path."""
    tokenizer: str | None = None
    """Directory of a tokenizer.json; default: the model's own tokenizer."""
    lora: LoRAConfig | None = None
    """Adapters instead of full fine-tuning (SFT only)."""
    gradient_checkpointing: bool = False
    """True trades ~30% more compute for activation memory that no longer grows with depth."""

    def __post_init__(self) -> None:
        if self.entry is None and self.path is None and self.hf_config is None:
            raise ValueError("model needs one of entry, path or hf_config")


@dataclass
class SourceConfig:
    """One dataset in a blend: a local JSONL or Parquet file (or a directory of them)."""

    name: str
    path: str
    """Relative paths resolve against the recipe file's directory."""
    field: str = "text"
    """Column with the text (pretraining) or the messages list (SFT)."""


@dataclass
class PhaseConfig:
    """A curriculum phase: blend weights from `start` (fraction of all training tokens) until the next phase."""

    start: float
    weights: dict[str, float]
    """Source name -> relative weight (normalised); unnamed sources get weight 0 in this phase."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"phase start must be in [0, 1), got {self.start}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("phase weights must be >= 0 with a positive sum")


@dataclass
class DataConfig:
    """Sources, curriculum and packing."""

    sources: list[SourceConfig]
    phases: list[PhaseConfig] = field(default_factory=list)
    """Curriculum; empty = one phase weighting all sources equally."""
    seq_len: int = 4096
    pack: bool = True
    """Concatenate samples into full rows with document boundaries (attention and Mamba state reset per sample).
    False pads each sample to its own row (Nano-v2 SFT stage 2: concatenation hurt tool calling)."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        if self.phases:
            if self.phases[0].start != 0.0:
                raise ValueError("the first phase must start at 0.0")
            starts = [p.start for p in self.phases]
            if starts != sorted(starts) or len(set(starts)) != len(starts):
                raise ValueError(f"phase starts must increase strictly, got {starts}")
            for p in self.phases:
                unknown = set(p.weights) - set(names)
                if unknown:
                    raise ValueError(f"phase at {p.start} weights unknown sources {sorted(unknown)}; known: {names}")
        if self.seq_len < 8:
            raise ValueError(f"seq_len must be >= 8, got {self.seq_len}")


@dataclass
class OptimConfig:
    """AdamW; defaults are the Nemotron-H / Nano-v2 values (betas 0.9/0.95, wd 0.1)."""

    lr: float = 4.5e-4
    """Peak (stable) learning rate."""
    min_lr: float = 4.5e-6
    """Floor reached at the end of the decay."""
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    """Applied to matrices only; norms, biases, embeddings of Mamba A/D and marked params are not decayed."""
    grad_clip: float = 1.0
    """Global grad-norm clip; 0 disables."""

    def __post_init__(self) -> None:
        if not (0 <= self.min_lr <= self.lr):
            raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr} lr={self.lr}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")


@dataclass
class ScheduleConfig:
    """Learning-rate shape over optimizer steps."""

    kind: Literal["wsd", "cosine", "constant"] = "wsd"
    """wsd: warmup-stable-decay (Nano-v2); cosine: cosine to min_lr (Nemotron-H: 1% of peak); constant."""
    warmup_steps: int = 0
    decay_fraction: float = 0.2
    """wsd only: the share of steps spent in the final linear decay."""

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or not 0 <= self.decay_fraction <= 1:
            raise ValueError("warmup_steps must be >= 0 and decay_fraction in [0, 1]")


@dataclass
class FP8Config:
    """Nemotron-H FP8 recipe: per-tensor current scaling, E4M3 weights/activations, E5M2 gradients."""

    enabled: bool = False
    recipe: Literal["hybrid", "e4m3"] = "hybrid"
    """hybrid: E5M2 gradients (Nemotron-H); e4m3: E4M3 everywhere (Nano-12B-v2 paper text, UNVERIFIED)."""
    bf16_first: int = 4
    """Blocks at the start kept out of FP8 (Nemotron-H: 4; Megatron-Bridge Nano-v2 recipe: 2)."""
    bf16_last: int = 4
    emulate: bool | None = None
    """None: real scaled FP8 matmuls on Hopper+, emulation (quantise, dequantise, matmul) elsewhere."""


@dataclass
class SFTConfig:
    """Chat-SFT specifics (Nano-v2 post-training section)."""

    chat_format: str = "nemotron-v2"
    no_reasoning_fraction: float = 0.1
    """Share of reasoning samples rendered with an empty trace and `/no_think` (teaches thinking off)."""
    truncated_reasoning_fraction: float = 0.0
    """Share of reasoning samples whose trace is cut to a budget but still end in the answer (budget training)."""
    truncation_budget: tuple[int, int] = (1024, 2048)
    """Range (in trace tokens) of the cut for truncated samples."""

    def __post_init__(self) -> None:
        for name in ("no_reasoning_fraction", "truncated_reasoning_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.no_reasoning_fraction + self.truncated_reasoning_fraction > 1.0:
            raise ValueError("no_reasoning_fraction + truncated_reasoning_fraction must be <= 1")
        lo, hi = self.truncation_budget
        if not 0 < lo <= hi:
            raise ValueError(f"truncation_budget must be 0 < lo <= hi, got {self.truncation_budget}")


@dataclass
class TrainConfig:
    """Loop size, precision, logging and checkpoints."""

    steps: int
    """Optimizer steps."""
    micro_batch_size: int = 1
    """Rows per forward pass (per rank)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step; global batch = micro_batch_size * grad_accum * world size."""
    precision: Literal["bf16", "fp32"] = "bf16"
    """bf16 autocast with fp32 master weights, or plain fp32 (exact reproducibility on CPU)."""
    seed: int = 0
    out_dir: str = "runs/default"
    log_every: int = 10
    ckpt_every: int = 0
    """Steps between checkpoints; 0 = only at the end."""
    keep_checkpoints: int = 2
    fsdp: bool = False
    """Shard with FSDP2 (`fully_shard`) when launched under torchrun with world size > 1."""
    num_threads: int = 0
    """torch intra-op threads on CPU; 0 leaves torch's default."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.micro_batch_size < 1 or self.grad_accum < 1:
            raise ValueError("steps, micro_batch_size and grad_accum must be >= 1")


@dataclass
class RecipeConfig:
    """One stage of a published recipe: the argument of a typed entrypoint."""

    stage: Literal["pretrain", "sft"]
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    description: str = ""
    paper: str = ""
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    fp8: FP8Config = field(default_factory=FP8Config)
    sft: SFTConfig | None = None
    """Required for stage sft."""
    prepare: str | None = None
    """"module:function" called with (cfg, out_root) before the stage, e.g. to generate a synthetic corpus."""

    def __post_init__(self) -> None:
        if self.stage == "sft" and self.sft is None:
            self.sft = SFTConfig()
        if self.stage != "sft" and self.sft is not None:
            raise ValueError("an `sft:` section only belongs to stage sft")
        if self.model.lora is not None and self.stage != "sft":
            raise ValueError("model.lora is for sft stages")
        if self.schedule.warmup_steps >= self.train.steps and self.schedule.kind != "constant":
            raise ValueError(f"schedule.warmup_steps ({self.schedule.warmup_steps}) must be < train.steps "
                             f"({self.train.steps})")


@dataclass
class PipelineConfig:
    """`recipes/ENTRY/all.yaml`: the stages of a whole recipe, run in order under one run root."""

    stages: list[str]
    """Stage YAMLs of the same entry, in order (e.g. [pretrain, sft])."""
    description: str = ""
    after: str | None = None
    """"module:function" called with (out_root, tiny) when every stage is done (evaluation, packaging)."""

    def __post_init__(self) -> None:
        if not self.stages or "all" in self.stages:
            raise ValueError("stages must list at least one stage, and not `all`")


# ----------------------------------------------------------------------------------------------------------------
# YAML nodes -> dataclasses, with file:line in every error


def _where(path: Path | str, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _convert(tp: Any, node: yaml.Node, path: Path | str, key: str) -> Any:
    """Build a value of type `tp` from a YAML node, raising ConfigError with file:line on mismatch."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, node, path, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{_where(path, node)}: `{key}`: no type matches")
    if dataclasses.is_dataclass(tp):
        return _build(tp, node, path, key)
    if origin is Literal:
        v = _scalar(node, path, key)
        if v not in args:
            raise ConfigError(f"{_where(path, node)}: `{key}` must be one of {list(args)}, got {v!r}")
        return v
    if origin in (list, tuple):
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigError(f"{_where(path, node)}: `{key}` must be a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(node.value) != len(args):
                raise ConfigError(f"{_where(path, node)}: `{key}` must have {len(args)} items")
            return tuple(_convert(a, n, path, key) for a, n in zip(args, node.value))
        item = args[0] if args else Any
        out = [_convert(item, n, path, f"{key}[{i}]") for i, n in enumerate(node.value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{_where(path, node)}: `{key}` must be a mapping")
        vt = args[1] if args else Any
        return {_scalar(k, path, key): _convert(vt, v, path, f"{key}.{k.value}") for k, v in node.value}
    if tp is Any:
        return _plain(node)
    v = _scalar(node, path, key)
    if tp is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if tp in (int, float, str, bool) and type(v) is not tp:
        raise ConfigError(f"{_where(path, node)}: `{key}` must be {tp.__name__}, got {v!r}")
    return v


def _scalar(node: yaml.Node, path: Path | str, key: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{_where(path, node)}: `{key}` must be a single value")
    return yaml.safe_load(yaml.serialize(node))


def _plain(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _build(cls: type, node: yaml.Node, path: Path | str, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_where(path, node)}: `{key}` must be a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for knode, vnode in node.value:
        name = knode.value
        if name not in fields:
            raise ConfigError(f"{_where(path, knode)}: unknown field `{name}` in {key or 'recipe'}; "
                              f"known: {sorted(fields)}")
        kwargs[name] = _convert(hints[name], vnode, path, f"{key}.{name}" if key else name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{_where(path, node)}: {key or 'recipe'}: {e}") from None
    except ValueError as e:  # a __post_init__ check failed
        raise ConfigError(f"{_where(path, node)}: {key or 'recipe'}: {e}") from None


def _merge(base: yaml.MappingNode, over: yaml.MappingNode) -> yaml.MappingNode:
    """Deep-merge mapping `over` into `base` (node level, so line numbers survive); lists are replaced."""
    out = list(base.value)
    index = {k.value: i for i, (k, _) in enumerate(out)}
    for k, v in over.value:
        i = index.get(k.value)
        if i is not None and isinstance(out[i][1], yaml.MappingNode) and isinstance(v, yaml.MappingNode):
            out[i] = (out[i][0], _merge(out[i][1], v))
        elif i is not None:
            out[i] = (out[i][0], v)
        else:
            index[k.value] = len(out)
            out.append((k, v))
    return yaml.MappingNode(base.tag, out, base.start_mark, base.end_mark)


def load_recipe(path: str | Path, *, tiny: bool = False, overrides: dict[str, Any] | None = None,
                out: str | Path | None = None) -> RecipeConfig:
    """Read a recipe YAML into a validated `RecipeConfig` (pretrain / sft stages); see `load_config`."""
    cfg = load_config(path, RecipeConfig, tiny=tiny, overrides=overrides, out=out)
    _resolve_paths(cfg, Path(path).parent)
    return cfg


def _substitute(node: yaml.Node, out: str) -> None:
    if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str) and "{out}" in node.value:
        node.value = node.value.replace("{out}", out)
    elif isinstance(node, yaml.SequenceNode):
        for n in node.value:
            _substitute(n, out)
    elif isinstance(node, yaml.MappingNode):
        for _, v in node.value:
            _substitute(v, out)


def load_config(path: str | Path, cls: type, *, tiny: bool = False, overrides: dict[str, Any] | None = None,
                out: str | Path | None = None) -> Any:
    """Read a recipe YAML into the typed dataclass `cls` (any stage: pretrain, sft, distill, grpo, ...).

    Args:
        path: The YAML file.
        tiny: Deep-merge the file's `tiny:` profile over the full recipe.
        overrides: Dotted keys to values (`{"train.steps": 3}`), applied last (CLI `--set train.steps=3`).
        out: The run root; every `{out}` in a string value becomes its absolute path, so the stages of one recipe
            chain through it (`model.path: "{out}/pretrain/final"`). None leaves `{out}` as written.

    Raises:
        ConfigError: naming `file:line` for unknown fields, wrong types and failed cross-field checks.
    """
    path = Path(path)
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read recipe: {e.strerror}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}:1: a recipe must be a mapping")
    tiny_node = None
    body = []
    for k, v in root.value:
        if k.value == "tiny":
            tiny_node = v
        else:
            body.append((k, v))
    root = yaml.MappingNode(root.tag, body, root.start_mark, root.end_mark)
    if tiny:
        if tiny_node is None:
            raise ConfigError(f"{path}: no `tiny:` profile in this recipe")
        if not isinstance(tiny_node, yaml.MappingNode):
            raise ConfigError(f"{_where(path, tiny_node)}: `tiny` must be a mapping")
        root = _merge(root, tiny_node)
    if overrides:
        for dotted, value in overrides.items():
            over: yaml.Node = yaml.compose(yaml.safe_dump(value))
            for part in reversed(dotted.split(".")):
                over = yaml.MappingNode("tag:yaml.org,2002:map", [(yaml.ScalarNode("tag:yaml.org,2002:str", part),
                                                                    over)])
            root = _merge(root, over)
    if out is not None:
        _substitute(root, str(Path(out).resolve()))
    return _build(cls, root, path, "")


def _resolve_paths(cfg: RecipeConfig, base: Path) -> None:
    # Data paths are relative to the recipe so a recipe directory can ship its own small data.
    for s in cfg.data.sources:
        if not Path(s.path).is_absolute():
            s.path = str((base / s.path).resolve())


def to_dict(cfg: Any) -> dict[str, Any]:
    """A recipe as plain data (for `config.yaml` next to a run's checkpoints)."""
    return dataclasses.asdict(cfg)


RECIPES_DIR = Path(__file__).parent / "recipes"


def recipe_path(entry: str, stage: str) -> Path:
    """The shipped recipe file of `entry`/`stage`, with a clear error listing what exists."""
    p = RECIPES_DIR / entry / f"{stage}.yaml"
    if not p.is_file():
        have = sorted(f"{d.name}/{f.stem}" for d in RECIPES_DIR.iterdir() if d.is_dir() for f in d.glob("*.yaml"))
        raise ConfigError(f"no recipe {entry}/{stage} (looked for {p}); shipped: {', '.join(have)}")
    return p


def import_ref(target: str, what: str, error: type[Exception] = ConfigError) -> Any:
    """Import a `"module:attribute"` reference named by a recipe (hooks, stage entrypoints, rewards).

    Raises:
        error: naming `what` (the field or file that gave the reference) when it cannot be imported.
    """
    mod, sep, name = target.partition(":")
    try:
        if not sep:
            raise ImportError("expected 'module:attribute'")
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as e:
        raise error(f"{what}: cannot import {target!r} ({e})") from None
