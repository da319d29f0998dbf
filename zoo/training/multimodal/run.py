"""Run a multimodal recipe: stages in order on one model, then export and held-out evaluation.

Registered in `zoo.training.run.STAGES` as stages `mm-sft` and `aqa`, so `zoo train ENTRY STAGE` runs it. Per stage: freeze/unfreeze the
towers, build an ADS renderer for the stage length, pack a sample stream into length-balanced rows, and run
`zoo.training.loop.fit` with the assistant-only multimodal loss (checkpoints, resume and metrics under
`{out}/{stage}`); the fitting statistics (kept, degraded, dropped) go to `{out}/{stage}/fit_stats.json`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from zoo.errors import ConfigError
from zoo.training.config import load_config
from zoo.training.loop import fit
from zoo.training.multimodal.config import MMRecipeConfig, MMStageConfig
from zoo.training.multimodal.evaluate import evaluate_audio, evaluate_vision, write_json
from zoo.training.multimodal.loss import mm_loss
from zoo.training.multimodal.packing import iter_packed
from zoo.training.multimodal.render import AudioRenderer, VisionRenderer
from zoo.training.multimodal.sample import MMSample
from zoo.training.multimodal.towers import set_trainable
from zoo.training.optim import build_optimizer

__all__ = ["MM_STAGES", "is_mm_recipe", "load_mm_recipe", "mm_stage", "run_mm_recipe"]

MM_STAGES = ("mm-sft", "aqa")


def is_mm_recipe(path: str | Path) -> bool:
    """Whether a recipe file is a multimodal one (its top-level `stage:` is one of MM_STAGES)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # the regular loader reports the problem with file:line
    return isinstance(doc, dict) and doc.get("stage") in MM_STAGES


def load_mm_recipe(path: str | Path, *, tiny: bool = False, overrides: dict[str, Any] | None = None,
                   out: str | Path | None = None) -> MMRecipeConfig:
    """Read a multimodal recipe YAML; relative data paths resolve against the recipe's directory."""
    cfg = load_config(path, MMRecipeConfig, tiny=tiny, overrides=overrides, out=out)
    if cfg.data.path and not Path(cfg.data.path).is_absolute():
        cfg.data.path = str((Path(path).parent / cfg.data.path).resolve())
    return cfg


def build_mm_model(cfg: MMRecipeConfig) -> nn.Module:
    """The model, fp32, train mode, with its processor."""
    import zoo

    if cfg.model.path is not None:
        if not Path(cfg.model.path).is_dir():
            raise ConfigError(f"model.path {cfg.model.path}: not a directory")
        model = zoo.load(cfg.model.path, dtype=torch.float32)
    else:
        model = zoo.load(cfg.model.entry, tiny=cfg.model.tiny, seed=cfg.model.seed, dtype=torch.float32)
    if getattr(model, "processor", None) is None:
        raise ConfigError("the model has no processor (its checkpoint has no tokenizer files)")
    return model.train()


def _jsonl_vision(renderer: VisionRenderer, path: str, seed: int) -> Iterator[MMSample]:
    """Conversations from JSONL ({"messages", "images", "videos"}; media paths relative to the file), shuffled
    each epoch."""
    import random

    base = Path(path).parent
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: invalid JSON ({e})") from None
    rnd = random.Random(seed)
    while True:
        rnd.shuffle(rows)
        for r in rows:
            images = [str(base / p) for p in r.get("images", [])]
            videos = [str(base / p) for p in r.get("videos", [])]
            s = renderer(r["messages"], images, videos)
            if s is not None:
                yield s


def sample_stream(cfg: MMRecipeConfig, model: nn.Module, stage: MMStageConfig, index: int):
    """(renderer, endless sample iterator) for one stage."""
    seed = cfg.data.seed + 1000 * index
    src = cfg.data.source
    if src in ("vision_tasks", "vision_jsonl"):
        from zoo.training.multimodal.vision_tasks import TASKS, vision_stream

        renderer = VisionRenderer(model.processor, stage.max_len)
        if src == "vision_jsonl":
            return renderer, _jsonl_vision(renderer, cfg.data.path, seed)
        return renderer, vision_stream(renderer, seed=seed, tasks=cfg.data.tasks or TASKS,
                                       shuffle_answers=cfg.data.shuffle_answers)
    from zoo.audio.synthetic import TASKS as AUDIO_TASKS
    from zoo.training.multimodal.audio_tasks import aqa_stream

    renderer = AudioRenderer(model, stage.max_len)
    return renderer, aqa_stream(renderer, seed=seed, tasks=cfg.data.tasks or tuple(AUDIO_TASKS),
                                data=cfg.data.path if src == "aqa_files" else None,
                                shuffle_answers=cfg.data.shuffle_answers)


class _Batches:
    """Packed global batches for `fit` (not resumable mid-stage: a resumed stage continues on fresh draws)."""

    def __init__(self, packed: Iterator) -> None:
        self.packed = packed

    def __iter__(self) -> _Batches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return next(self.packed)[0]


def run_mm_recipe(path: str | Path, *, tiny: bool = False, resume: bool = False, out: str | Path,
                  overrides: dict[str, Any] | None = None) -> Path:
    """Load a multimodal recipe file and run it (see `mm_stage`); returns the export directory."""
    cfg = load_mm_recipe(path, tiny=tiny, overrides=overrides, out=out)
    return mm_stage(cfg, resume=resume, out_root=Path(out))


def mm_stage(cfg: MMRecipeConfig, *, resume: bool = False, stop_after: int | None = None,
             out_root: str | Path | None = None) -> Path:
    """Run every stage of a multimodal recipe, export the model, evaluate it when the recipe says so.

    Args:
        cfg: The loaded recipe.
        resume: Continue each stage from its newest checkpoint.
        stop_after: Stop every stage after this many steps and skip export/evaluation (simulated kill, tests).
        out_root: Run root; stages write `{out_root}/{stage}`, the export goes to `{out_root}/final`.

    Returns:
        The export directory.
    """
    out = Path(out_root) if out_root is not None else Path(cfg.train.out_dir)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    torch.manual_seed(cfg.train.seed)
    model = build_mm_model(cfg)
    pad = model.processor.tokenizer.pad_token_id or 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    for i, st in enumerate(cfg.stages):
        trainable = set_trainable(model, [p for p in st.trainable if p in _present(model)])
        print(f"== stage {st.name}: max_len {st.max_len}, {st.steps} steps, trainable {trainable} ==", file=sys.stderr)
        renderer, stream = sample_stream(cfg, model, st, i)
        batches = _Batches(iter_packed(stream, rows=cfg.data.rows, seq_len=st.max_len, buffer=cfg.data.pack_buffer,
                                       pad_id=pad))
        lr = st.lr if st.lr is not None else cfg.optim.lr
        optim = dataclasses.replace(cfg.optim, lr=lr, min_lr=min(cfg.optim.min_lr, lr))
        train = dataclasses.replace(cfg.train, steps=st.steps, out_dir=str(out / st.name))
        fit(model, build_optimizer(model, optim), batches, loss_fn=mm_loss, train=train, optim=optim,
            schedule=cfg.schedule, resume=resume, stop_after=stop_after)
        write_json(out / st.name / "fit_stats.json", renderer.stats.as_dict())
        print(f"   fit stats: {renderer.stats.as_dict()}", file=sys.stderr)
    export = Path(cfg.export) if cfg.export else out / "final"
    if stop_after is not None:
        return export
    set_trainable(model, list(_present(model)))
    model.eval()
    model.save_pretrained(export)
    if cfg.eval is not None:
        if cfg.stage == "aqa":
            metrics = evaluate_audio(model, out / "eval", n_per_task=cfg.eval.n_per_task, seed=cfg.eval.seed,
                                     k=cfg.eval.k)
        else:
            metrics = evaluate_vision(model, n_per_task=cfg.eval.n_per_task, seed=cfg.eval.seed,
                                      tasks=cfg.data.tasks or ("count", "colour", "event"))
        write_json(out / "eval.json", metrics)
        print(json.dumps(metrics.get("macro", metrics), indent=1), file=sys.stderr)
    return export


def _present(model: nn.Module) -> list[str]:
    from zoo.training.multimodal.towers import PARTS

    names = dict(model.named_children())
    return [p for p, mods in PARTS.items() if any(m in names for m in mods)]
