"""Run a shipped recipe by entry and stage: what `zoo train ENTRY STAGE` calls.

`STAGE` names `zoo/training/recipes/ENTRY/STAGE.yaml`; `all` runs `all.yaml`, a `PipelineConfig` listing the
stages in order, then its `after` hook. Every stage of one invocation shares the run root `out`, which recipes
reference as `{out}` (so `sft.yaml` can start from `{out}/pretrain/final`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError
from zoo.training.config import (
    DataConfig,
    PipelineConfig,
    _resolve_paths,
    import_ref,
    load_config,
    load_recipe,
    recipe_path,
)

# The YAML's `stage:` field -> (typed config "module:Class", entrypoint "module:function"). Each entrypoint takes
# (cfg, *, resume, stop_after, out_root). Recipes of every algorithm share one dispatcher instead of if/elif chains.
STAGES: dict[str, tuple[str, str]] = {
    "pretrain": ("zoo.training.config:RecipeConfig", "zoo.training.pretrain:pretrain"),
    "sft": ("zoo.training.config:RecipeConfig", "zoo.training.sft:sft"),
    "distill": ("zoo.training.distill_recipe:DistillRecipe", "zoo.training.distill_recipe:distill"),
    "grpo": ("zoo.training.rl.config:GRPORecipe", "zoo.training.grpo:grpo"),
    "mm-sft": ("zoo.training.multimodal.config:MMRecipeConfig", "zoo.training.multimodal.run:mm_stage"),
    "aqa": ("zoo.training.multimodal.config:MMRecipeConfig", "zoo.training.multimodal.run:mm_stage"),
}


def _resolve(ref: str) -> Any:
    return import_ref(ref, "zoo.training.run.STAGES")


def _stage_of(path: Path) -> str:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read recipe ({e})") from None
    stage = doc.get("stage") if isinstance(doc, dict) else None
    if stage not in STAGES:
        raise ConfigError(f"{path}: `stage` must be one of {sorted(STAGES)}, got {stage!r}")
    return stage


def run_stage_file(path: Path, *, tiny: bool, resume: bool, out: Path, overrides: dict[str, Any] | None = None,
                   stop_after: int | None = None):
    """Load one stage YAML into its typed config and call the stage's entrypoint (see STAGES)."""
    cfg = load_stage(path, tiny=tiny, overrides=overrides, out=out)
    return _resolve(STAGES[cfg.stage][1])(cfg, resume=resume, stop_after=stop_after, out_root=out)


def load_stage(path: str | Path, *, tiny: bool = False, overrides: dict[str, Any] | None = None,
               out: str | Path | None = None) -> Any:
    """Any stage YAML (pretrain, sft, distill, grpo, ...) -> its validated typed config (see STAGES)."""
    stage = _stage_of(Path(path))
    if stage in ("pretrain", "sft"):
        return load_recipe(path, tiny=tiny, overrides=overrides, out=out)
    cfg = load_config(path, _resolve(STAGES[stage][0]), tiny=tiny, overrides=overrides, out=out)
    if isinstance(getattr(cfg, "data", None), DataConfig):
        _resolve_paths(cfg, Path(path).parent)  # data paths are relative to the recipe file, as for pretrain/sft
    return cfg


def run_recipe(entry: str, stage: str, *, tiny: bool = False, resume: bool = False, out: str | Path | None = None,
               overrides: dict[str, Any] | None = None) -> Path:
    """Run `entry`/`stage` (or the whole pipeline for stage `all`); returns the run root."""
    root = Path(out) if out is not None else Path("runs") / (entry + ("-tiny" if tiny else ""))
    path = recipe_path(entry, stage)
    if stage != "all":
        run_stage_file(path, tiny=tiny, resume=resume, out=root, overrides=overrides)
        return root
    pipe: PipelineConfig = load_config(path, PipelineConfig)  # stages get the tiny profile, the list does not
    for s in pipe.stages:
        print(f"== {entry}/{s} ==", file=sys.stderr)
        run_stage_file(recipe_path(entry, s), tiny=tiny, resume=resume, out=root, overrides=overrides)
    if pipe.after:
        f = import_ref(pipe.after, f"{path}: after")
        f(root, tiny)
    return root
