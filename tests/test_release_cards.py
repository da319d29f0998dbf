"""Model cards: every entry renders, its front matter is valid Hub metadata, and no committed card is stale."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

import zoo
from zoo.cards import (
    CARDS_DIR,
    Lineage,
    card_path,
    compress_pattern,
    facts_from_entry,
    load_results,
    render,
    render_card,
    write_cards,
)
from zoo.errors import ConfigError, UnknownModelError
from zoo.language.config import LMConfig
from zoo.registry import get_entry

NAMES = zoo.list_models()
HAS_MEMORY = importlib.util.find_spec("zoo.memory") is not None


@functools.cache
def card(name: str) -> str:
    return render_card(name)


def split(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n"), "a card starts with YAML front matter"
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_renders_valid_card(name: str) -> None:
    entry = get_entry(name)
    meta, body = split(card(name))
    assert isinstance(meta["license"], str) and meta["license"]
    if meta["license"] == "other":
        assert meta["license_name"] == entry.license
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] in ("text-generation", "image-text-to-text", "audio-text-to-text")
    assert meta.get("base_model") == entry.base_model
    assert isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])
    assert "nemotron-zoo" in meta["tags"] and entry.family in meta["tags"]
    for section in ("## Architecture", "## Chat format", "## Usage", "## License", "## Evaluation"):
        assert section in body, section
    assert f'm = zoo.load("{name}"' in body
    for paper in entry.paper:
        assert f"https://arxiv.org/abs/{paper}" in body
    for stage in entry.recipes:
        assert f"`zoo train {name} {stage} [--tiny]`" in body
    if entry.chat_format:
        assert f"`{entry.chat_format}`:" in body
    config = entry.config.get("text_config") if "text_config" in entry.config else entry.config
    assert f"| block pattern | `{compress_pattern(LMConfig.from_hf(config).pattern)}` |" in body
    if HAS_MEMORY:
        assert "## Memory plan" in body
        for ctx in ("| 8k |", "| 32k |", "| 128k |"):
            assert ctx in body


def test_card_content_for_the_flagship() -> None:
    meta, body = split(card("nano-9b-v2"))
    assert "| block pattern | `M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-` |" in body
    assert "| blocks | 27 mamba, 4 attention, 25 mlp |" in body
    assert "| positions | none (NoPE) |" in body
    assert "/no_think" in body and "thinking=False" in body and "thinking_budget=512" in body
    assert "reasoning" in meta["tags"]
    assert meta["license"] == "other" and meta["license_name"] == "nvidia-open-model-license"
    assert meta["license_link"].startswith("https://www.nvidia.com/")
    # parameters of the full-size architecture, computed on the meta device
    assert "| parameters | 8.89 B (" in body


def test_llama_pattern_is_compressed_and_multimodal_tags() -> None:
    assert compress_pattern("*-*-*-") == "(*-)×3"
    assert compress_pattern("M-M*") == "M-M*"
    _, body = split(card("llama-nemotron-nano-8b"))
    assert "| block pattern | `(*-)×32` |" in body and "detailed thinking" in body
    meta, body = split(card("qwen2-audio-7b"))
    assert meta["pipeline_tag"] == "audio-text-to-text" and "| audio tower |" in body
    assert "Qwen2AudioForConditionalGeneration" in body
    meta, body = split(card("eagle2.5-8b"))
    assert meta["pipeline_tag"] == "image-text-to-text" and "| vision tower | `siglip_vision_model`, 27 layers" in body


def test_committed_cards_are_fresh() -> None:
    stale = [n for n in NAMES if not card_path(n).is_file() or card_path(n).read_text(encoding="utf-8") != card(n)]
    orphans = sorted(p.name for p in CARDS_DIR.glob("*.md") if p.stem not in NAMES)
    assert not stale and not orphans, (
        f"stale or missing cards {stale}, cards without an entry {orphans}: regenerate with `zoo card --all --write`"
    )


def test_results_rows_render(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"results": {"nano-9b-v2": [
        {"benchmark": "gsm8k-tiny", "metric": "accuracy", "value": 0.5, "source": "zoo eval (tiny)",
         "setting": "reasoning off"}]}}))
    rows = load_results(tmp_path)
    body = render(facts_from_entry(get_entry("nano-9b-v2"), results=rows))
    assert "| gsm8k-tiny | accuracy | reasoning off | 0.5 | zoo eval (tiny) |" in body
    assert "No results recorded yet" not in body
    (tmp_path / "results.json").write_text(json.dumps({"results": {"nano-9b-v2": [{"benchmark": "x"}]}}))
    with pytest.raises(ConfigError, match=r"results\['nano-9b-v2'\]\[0\] misses"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ConfigError, match="results.json"):
        load_results(tmp_path)


def test_lineage_in_front_matter() -> None:
    facts = facts_from_entry(get_entry("nano-9b-v2"), results={})
    lineage = Lineage("nvidia/NVIDIA-Nemotron-Nano-12B-v2", method="Minitron pruning + distillation",
                      recipe="nano-9b-v2/distill", data="distillation blend, 60B tokens")
    meta, body = split(render(type(facts)(**{**vars(facts), "lineage": lineage,
                                              "base_model": lineage.base_model})))
    assert meta["base_model"] == "nvidia/NVIDIA-Nemotron-Nano-12B-v2"
    assert meta["base_model_relation"] == "finetune"
    assert "| method | Minitron pruning + distillation |" in body
    assert "| data | distillation blend, 60B tokens |" in body
    with pytest.raises(ConfigError, match="relation"):
        Lineage("a/b", relation="pruned")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="base_model"):
        Lineage.from_dict({"method": "SFT"})


def test_card_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from zoo.cli import main

    assert main(["card", "nano-9b-v2"]) == 0
    assert capsys.readouterr().out == card("nano-9b-v2")
    assert main(["card", "--all"]) == 2  # printing every card is refused
    assert "--write" in capsys.readouterr().err
    assert main(["card", "no-such-model"]) == 2
    assert "'no-such-model'" in capsys.readouterr().err
    with pytest.raises(UnknownModelError):
        render_card("no-such-model")
    # --write with prune mirrors the registry: an orphan card disappears, a second run changes nothing
    (tmp_path / "model_cards").mkdir()
    orphan = tmp_path / "model_cards" / "renamed-entry.md"
    orphan.write_text("old")
    written = write_cards(["tool-n1-7b", "prismmath-7b"], tmp_path / "model_cards", prune=True)
    assert orphan in written and not orphan.exists()
    assert (tmp_path / "model_cards" / "tool-n1-7b.md").read_text() == card("tool-n1-7b")
    assert write_cards(["tool-n1-7b", "prismmath-7b"], tmp_path / "model_cards", prune=True) == []
