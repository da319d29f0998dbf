"""`zoo train ENTRY distill`: prune a teacher into a student (or take a given student) and distill with logit KD.

Steps (Minitron, algorithms.md 3): teacher -> calibration batches from the recipe's data -> importance ->
[iterative depth removal] -> width pruning -> (memory-budget check of the student's full-size config) ->
KD on the training core (`stage.run_stage` with `distill.make_kd_loss_fn`: checkpoint/resume, FSDP2, metrics) ->
HF-format export with lineage. Teacher and student are declared side by side in one YAML.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from zoo.errors import ConfigError
from zoo.training.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RecipeConfig,
    ScheduleConfig,
    SFTConfig,
    SourceConfig,
    TrainConfig,
)
from zoo.training.distill import KDConfig, PruneConfig, make_kd_loss_fn


@dataclass
class BudgetConfig:
    """Memory constraint the student must meet (checked with `zoo.memory_plan`).

    Attributes:
        entry: registry entry whose full-size config is pruned with the same spec for the check (e.g. the 12B
            when a tiny stand-in teacher is distilled); None checks the student itself.
        budget_gib: the budget (Nano-v2: 19.66 GiB on an A10G).
        context: context length (Nano-v2: 131072).
        batch: sequences (Nano-v2: 1).
    """

    budget_gib: float
    context: int
    entry: str | None = None
    batch: int = 1
    full_scale_prune: PruneConfig | None = None


@dataclass
class StudentConfig:
    """Either an explicit student model or a prune of the teacher (exactly one)."""

    model: ModelConfig | None = None
    prune: PruneConfig | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.prune is None):
            raise ValueError("student: give exactly one of `model` and `prune`")


@dataclass
class DistillRecipe:
    """A distillation stage: teacher and student side by side, the data mix, the loss, the loop settings."""

    stage: Literal["distill"]
    teacher: ModelConfig
    student: StudentConfig
    data: DataConfig
    train: TrainConfig
    kd: KDConfig = field(default_factory=KDConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    budget: BudgetConfig | None = None
    description: str = ""
    paper: str = ""
    prepare: str | None = None


def _docs_fn(chat_format: str):
    """Sources with `field: messages` are chat samples (assistant tokens only); others are plain text."""
    from zoo.training.pretrain import text_documents
    from zoo.training.sft import chat_documents

    def make(source: SourceConfig, tokenizer: Any, rc: RecipeConfig):
        if source.field == "messages":
            sft_rc = dataclasses.replace(rc, stage="sft", sft=SFTConfig(chat_format=chat_format))
            return chat_documents(source, tokenizer, sft_rc)
        return text_documents(source, tokenizer, rc)

    return make


def _as_recipe(cfg: DistillRecipe, model: ModelConfig) -> RecipeConfig:
    return RecipeConfig(stage="pretrain", model=model, data=cfg.data, train=cfg.train, optim=cfg.optim,
                        schedule=cfg.schedule, description=cfg.description, paper=cfg.paper)


def _calibration(cfg: DistillRecipe, teacher: torch.nn.Module, n_samples: int) -> list[torch.Tensor]:
    """Calibration batches: the first `n_samples` rows of the recipe's own data stream."""
    from zoo.training.data import BlendSampler, PackedBatches

    tok = teacher.tokenizer
    rc = _as_recipe(cfg, cfg.teacher)
    make = _docs_fn(getattr(teacher, "chat_format", None) or "nemotron-v2")
    sources = {s.name: make(s, tok, rc) for s in cfg.data.sources}
    rows = min(16, n_samples)
    total = n_samples * cfg.data.seq_len
    sampler = BlendSampler(sources, [(p.start, p.weights) for p in cfg.data.phases], total, seed=cfg.train.seed + 1)
    batches = PackedBatches(sampler, cfg.data.seq_len, rows, pack=True, split_docs=True,
                            pad_id=tok.pad_token_id or 0)
    out, seen = [], 0
    while seen < n_samples:
        out.append(next(batches)["input_ids"])
        seen += rows
    return out


def check_budget(cfg: DistillRecipe, student_cfg) -> None:
    """Refuse a student whose (full-scale) architecture does not fit the recipe's memory budget."""
    if cfg.budget is None:
        return
    from zoo.language.config import LMConfig
    from zoo.memory import memory_plan
    from zoo.registry import get_entry
    from zoo.training.prune import PruneSpec, pruned_config

    b = cfg.budget
    target = student_cfg
    if b.entry is not None:
        parent = LMConfig.from_hf(get_entry(b.entry).config)
        p = b.full_scale_prune
        if p is None:
            raise ConfigError("budget.entry needs budget.full_scale_prune (the same prune at full size)")
        target = pruned_config(parent, PruneSpec(hidden=p.hidden, ffn=p.ffn, mamba_heads=p.mamba_heads,
                                                 drop_blocks=tuple(p.drop_blocks)))
    plan = memory_plan(target, b.context, batch=b.batch)
    gib = plan.total_bytes / 1024**3
    print(f"distill: student at full scale needs {gib:.2f} GiB at context {b.context} (budget {b.budget_gib})",
          file=sys.stderr)
    if gib > b.budget_gib:
        raise ConfigError(f"the student needs {gib:.2f} GiB at {b.context} tokens, over the {b.budget_gib} GiB budget")


def build_student(cfg: DistillRecipe, teacher: torch.nn.Module, out: Path) -> Path:
    """Prune the teacher per `student.prune` and save the student (with the teacher's tokenizer) to `out`."""
    from zoo.training.prune import PruneSpec, block_removal_order, estimate_importance, prune

    p = cfg.student.prune
    calib = _calibration(cfg, teacher, p.calibration_samples)
    teacher.eval()
    imp = estimate_importance(teacher, calib)
    drop = list(p.drop_blocks)
    if p.num_blocks is not None and not drop:
        drop = block_removal_order(teacher, calib[:2], teacher.config.num_layers - p.num_blocks)
    spec = PruneSpec(hidden=p.hidden, ffn=p.ffn, mamba_heads=p.mamba_heads, drop_blocks=tuple(sorted(drop)))
    student = prune(teacher, spec, imp, rescale_norms=p.rescale_norms)
    check_budget(cfg, student.config)
    student.tokenizer, student.chat_format = teacher.tokenizer, getattr(teacher, "chat_format", None)
    lineage = {"base_model": _teacher_name(cfg.teacher), "recipe": "distill (Minitron prune + logit KD)",
               "prune": dataclasses.asdict(spec)}
    student.save_pretrained(out, dtype="float32", lineage=lineage)
    print(f"distill: student {sum(x.numel() for x in student.parameters()) / 1e6:.2f}M params, pattern "
          f"{student.config.pattern}, dropped blocks {list(spec.drop_blocks)}", file=sys.stderr)
    return out


def _teacher_name(m: ModelConfig) -> str:
    return m.path or m.entry or "custom"


def distill(cfg: DistillRecipe, *, resume: bool = False, stop_after: int | None = None,
            out_root: str | Path | None = None):
    """Run the distillation stage end to end; the student ends up in `train.out_dir/final` (HF layout)."""
    from zoo.training.stage import _call_prepare, build_model, run_stage

    torch.manual_seed(cfg.train.seed)
    _call_prepare(cfg, Path(out_root) if out_root is not None else None)  # type: ignore[arg-type]
    teacher = build_model(cfg.teacher, cfg.train.seed).eval()
    out = Path(cfg.train.out_dir)
    if cfg.student.prune is not None:
        init = out / "student_init"
        if not (resume and (init / "config.json").exists()):
            build_student(cfg, teacher, init)
        student_model = ModelConfig(path=str(init))
    else:
        student_model = cfg.student.model
    loss = make_kd_loss_fn(teacher, temperature=cfg.kd.temperature, ce_weight=cfg.kd.ce_weight)
    chat_format = getattr(teacher, "chat_format", None) or "nemotron-v2"
    return run_stage(_as_recipe(cfg, student_model), _docs_fn(chat_format), resume=resume, stop_after=stop_after,
                     out_root=out_root, loss_fn=loss, split_docs=True)
