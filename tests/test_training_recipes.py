"""Every shipped recipe YAML validates (full and tiny); bad YAML errors name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.errors import ConfigError
from zoo.training.config import RECIPES_DIR, PipelineConfig, RecipeConfig, load_config, load_recipe
from zoo.training.optim import lr_at
from zoo.training.run import STAGES, load_stage

STAGE_FILES = sorted(p for p in RECIPES_DIR.glob("*/*.yaml") if p.stem != "all")
PIPELINES = sorted(RECIPES_DIR.glob("*/all.yaml"))


def test_published_recipes_are_shipped():
    have = {f"{p.parent.name}/{p.stem}" for p in STAGE_FILES}
    for need in ("nano-9b-v2/pretrain", "nano-9b-v2/sft", "nano-12b-v2-base/pretrain", "nano-12b-v2-base/sft",
                 "acereason-nemotron-1.1-7b/sft", "llama-nemotron-nano-8b/sft", "nano-tiny/pretrain", "nano-tiny/sft"):
        assert need in have


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_stage_yaml_validates(path: Path, tmp_path):
    # Every stage kind (pretrain, sft, distill, grpo, ...) validates through its own typed config.
    import yaml

    import zoo

    stage = yaml.safe_load(path.read_text()).get("stage")
    if stage not in STAGES:
        # Visible in the summary: `zoo train` cannot run this file until its owner registers the stage.
        pytest.xfail(f"stage {stage!r} of {path} is not registered in zoo.training.run.STAGES")
    full = load_stage(path, out=tmp_path)
    tiny = load_stage(path, tiny=True, out=tmp_path)
    assert full.stage in STAGES and tiny.stage == full.stage
    assert "{out}" not in repr(full) and "{out}" not in repr(tiny)
    if not isinstance(full, RecipeConfig):
        return  # the owning area tests its own stage's semantics (and header)
    text = path.read_text()
    # House header: purpose, prerequisites, launch command, override example.
    for word in ("Purpose:", "Prerequisites:", "Launch:", "Override:"):
        assert word in text, f"{path}: header lacks {word}"
    assert tiny.train.steps <= 5 and tiny.train.precision == "fp32" and not tiny.train.fsdp
    # The full recipe names a real entry (or its own config) and the tiny one runs from files in the package.
    if full.model.entry is not None:
        assert full.model.entry in zoo.list_models()
    for s in tiny.data.sources:
        if tiny.prepare is None:
            assert Path(s.path).is_file(), s.path
    # The schedule is well formed over the whole run.
    w, n = full.schedule.warmup_steps, full.train.steps
    lrs = [lr_at(i, n, full.optim, full.schedule) for i in (w, (w + n) // 2, n - 1)]
    assert lrs[0] == pytest.approx(full.optim.lr) and all(full.optim.min_lr <= lr <= full.optim.lr for lr in lrs)
    assert lr_at(0, n, full.optim, full.schedule) <= full.optim.lr


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.parent.name)
def test_pipelines_list_existing_stages(path: Path):
    pipe = load_config(path, PipelineConfig)
    for s in pipe.stages:
        assert (path.parent / f"{s}.yaml").is_file()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


BASE = """\
stage: pretrain
model:
  entry: nano-9b-v2
  tiny: true
data:
  sources:
    - {name: a, path: a.jsonl}
train:
  steps: 10
"""


def test_valid_minimal_and_overrides(tmp_path):
    cfg = load_recipe(_write(tmp_path, BASE), overrides={"train.steps": 3, "optim.lr": 1e-3})
    assert cfg.train.steps == 3 and cfg.optim.lr == 1e-3 and cfg.optim.betas == (0.9, 0.95)
    assert cfg.data.sources[0].path == str(tmp_path / "a.jsonl")  # relative to the recipe file


@pytest.mark.parametrize("patch,line,msg", [
    (("  steps: 10", "  steps: 10\n  stepz: 3"), 10, "unknown field `stepz`"),
    (("  steps: 10", "  steps: ten"), 9, "must be int"),
    (("  tiny: true", "  tiny: yes please"), 4, "must be bool"),
    (("stage: pretrain", "stage: rl"), 1, "must be one of"),
    (("train:\n  steps: 10", "train:\n  steps: 10\noptim:\n  lr: 1.0e-3\n  min_lr: 1.0"), 11, "min_lr <= lr"),
    (("    - {name: a, path: a.jsonl}", "    - {name: a, path: a.jsonl}\n  phases:\n    - {start: 0.0, weights: {b: 1.0}}"),
     6, "unknown sources"),
])
def test_errors_name_file_and_line(tmp_path, patch, line, msg):
    p = _write(tmp_path, BASE.replace(*patch))
    with pytest.raises(ConfigError, match=msg) as e:
        load_recipe(p)
    assert f"{p}:{line}" in str(e.value)


def test_missing_section_and_tiny_profile(tmp_path):
    p = _write(tmp_path, BASE.replace("train:\n  steps: 10\n", ""))
    with pytest.raises(ConfigError, match="train"):
        load_recipe(p)
    with pytest.raises(ConfigError, match="no `tiny:` profile"):
        load_recipe(_write(tmp_path, BASE), tiny=True)
