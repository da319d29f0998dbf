"""Model cards generated from the registry and the committed results table, never written by hand.

`render_card(name)` turns a registry entry into the README.md of a Hub repo: YAML front matter the Hub indexes
(license, library_name, pipeline_tag, base_model, tags), then the architecture with its block pattern, parameter
count, memory plan at 8k/32k/128k tokens, chat format with its reasoning toggle, example code, recipe summary, paper
links, license and evaluation table. `render_model_card(model, ...)` does the same for a loaded (possibly fine-tuned
or pruned) model and records its lineage. `model_cards/NAME.md` holds the rendered card of every entry; a test
fails when one differs from what this module renders now (`zoo card --all --write` regenerates them).

Everything rendered is a pure function of the registry, the recipe YAML files and `model_cards/results.json`:
no dates, versions or host facts, so a card is stale only when its inputs changed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml

from zoo.errors import ConfigError, ZooError

__all__ = [
    "CARDS_DIR",
    "CONTEXTS",
    "CardFacts",
    "Lineage",
    "card_path",
    "facts_from_entry",
    "facts_from_model",
    "front_matter",
    "load_results",
    "render",
    "render_card",
    "render_model_card",
    "write_cards",
]

# Where the generated cards and the results table live in a source checkout (absent from an installed wheel,
# in which case cards render without evaluation rows).
CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"
RESULTS_FILE = "results.json"
# Context lengths of the memory table: the three every Nemotron card quotes (8k base, 32k, 128k long context).
CONTEXTS: tuple[int, ...] = (8192, 32768, 131072)
_GIB = 1024**3

# Hub license identifiers we can name directly; anything else becomes `license: other` + `license_name`.
_HUB_LICENSES = {
    "apache-2.0", "mit", "llama3", "llama3.1", "llama3.2", "llama3.3", "cc-by-4.0", "cc-by-nc-4.0", "other",
}
_LICENSE_LINKS = {
    "nvidia-open-model-license": "https://www.nvidia.com/en-us/agreements/enterprise-software/nvidia-open-model-license/",
    "apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
    "llama3.1": "https://www.llama.com/llama3_1/license/",
    "llama3.3": "https://www.llama.com/llama3_3/license/",
}

# Pipeline tag per top-level model_type; language models are the default. Keyed on the explicit config field.
_PIPELINE_TAGS = {"eagle_2_5_vl": "image-text-to-text", "qwen2_audio": "audio-text-to-text"}

# Families transformers 5.23 loads natively (no remote code): the card shows a transformers snippet for these.
TRANSFORMERS_NATIVE = ("nemotron_h", "llama", "qwen2", "qwen2_audio")


@dataclass(frozen=True)
class ChatFormatDoc:
    """How one chat format switches reasoning, for the card's chat section.

    Attributes:
        summary: one paragraph on the turn layout.
        toggle: how reasoning is switched on/off, in the format's own terms and through `m.chat(thinking=...)`.
        switch_off: whether `thinking=False` is meaningful (the example code shows it).
        budget: whether the format supports `thinking_budget` (reasoning inside `<think>...</think>`).
    """

    summary: str
    toggle: str
    switch_off: bool = False
    budget: bool = False


CHAT_FORMATS: dict[str, ChatFormatDoc] = {
    "nemotron-v2": ChatFormatDoc(
        summary="Turns are `<SPECIAL_10>System`, `<SPECIAL_11>User`, `<SPECIAL_11>Assistant` blocks; a system block "
        "is always present. Tools go in `<AVAILABLE_TOOLS>[...]</AVAILABLE_TOOLS>`, calls come back as "
        "`<TOOLCALL>[...]</TOOLCALL>`.",
        toggle="Reasoning is on by default. `/think` or `/no_think` in a system or user message switches it (the "
        "last one wins); with reasoning off the assistant turn starts with an empty `<think></think>`. "
        "`m.chat(..., thinking=False)` adds the flag for you; `thinking_budget=N` caps the reasoning client-side, "
        "then closes `</think>` and lets the model answer.",
        switch_off=True,
        budget=True,
    ),
    "llama-nemotron": ChatFormatDoc(
        summary="Llama-3 header turns (`<|start_header_id|>role<|end_header_id|>`, `<|eot_id|>`).",
        toggle="Reasoning is switched only by the system prompt: `detailed thinking on` or `detailed thinking off` "
        "(`m.chat(..., thinking=True|False)` writes it). With it on the reply carries `<think>...</think>` before "
        "the answer.",
        switch_off=True,
        budget=True,
    ),
    "llama-nemotron-v1.5": ChatFormatDoc(
        summary="Llama-3 header turns; tools in `<AVAILABLE_TOOLS>[...]</AVAILABLE_TOOLS>`, calls in "
        "`<TOOLCALL>[...]</TOOLCALL>`.",
        toggle="Reasoning is on by default; `/no_think` in the system message turns it off (the generation prompt is "
        "then pre-filled with an empty think block), `/think` turns it back on; `m.chat(..., thinking=False)` sets "
        "the flag.",
        switch_off=True,
        budget=True,
    ),
    "deepseek-r1": ChatFormatDoc(
        summary="DeepSeek-R1-Distill turns: `<｜User｜>` question `<｜Assistant｜>`, no system prompt.",
        toggle="No switch: the prompt ends with `<think>` and the model always reasons before answering "
        "(`thinking=False` is refused).",
        budget=True,
    ),
    "chatml": ChatFormatDoc(
        summary="ChatML turns: `<|im_start|>role ... <|im_end|>`; tools in `<tools>`, calls in `<tool_call>`.",
        toggle="No switch in the format itself: `m.chat(..., thinking=True)` pre-fills `<think>` for models trained "
        "to reason that way.",
    ),
}


@dataclass(frozen=True)
class Lineage:
    """Where a released model came from: recorded in the card front matter (`base_model`) and a Lineage section.

    Attributes:
        base_model: Hub repo id (or zoo entry name) of the model this one was made from.
        relation: the Hub's `base_model_relation` (pruning and distillation count as `finetune` there).
        method: what was done, in words ("SFT", "Minitron pruning + distillation", "GRPO").
        recipe: the recipe that did it, e.g. `nano-9b-v2/sft` or a path to the YAML.
        data: a short summary of the training data.
    """

    base_model: str
    relation: Literal["finetune", "adapter", "merge", "quantized"] = "finetune"
    method: str = ""
    recipe: str = ""
    data: str = ""

    def __post_init__(self) -> None:
        if not self.base_model or not isinstance(self.base_model, str):
            raise ConfigError("Lineage.base_model must be a non-empty string (a Hub repo id or a zoo entry name)")
        if self.relation not in ("finetune", "adapter", "merge", "quantized"):
            raise ConfigError(f"Lineage.relation must be finetune|adapter|merge|quantized, got {self.relation!r}")

    def to_dict(self) -> dict[str, str]:
        return {"base_model": self.base_model, "relation": self.relation, "method": self.method,
                "recipe": self.recipe, "data": self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "lineage") -> Lineage:
        """Build from a mapping (a `lineage.json`), naming `source` in errors."""
        unknown = set(data) - {"base_model", "relation", "method", "recipe", "data"}
        if unknown:
            raise ConfigError(f"{source}: unknown lineage field(s) {sorted(unknown)}")
        if "base_model" not in data:
            raise ConfigError(f"{source}: lineage needs a base_model")
        return cls(**{k: str(v) for k, v in data.items()})


@dataclass(frozen=True)
class MemoryRow:
    """One row of the memory table, in bytes."""

    context: int
    weights: int
    kv: int
    ssm: int
    total: int


@dataclass(frozen=True)
class RecipeSummary:
    """One published recipe stage of an entry."""

    stage: str
    path: str
    facts: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CardFacts:
    """Everything a card shows, gathered from an entry or a model; `render` is a pure function of this."""

    title: str
    entry_name: str | None
    repo_id: str | None
    revision: str | None
    description: str
    hf_config: dict[str, Any]
    license: str
    papers: tuple[str, ...]
    chat_format: str | None
    params: int | None
    memory: tuple[MemoryRow, ...]
    recipes: tuple[RecipeSummary, ...]
    results: tuple[dict[str, Any], ...]
    lineage: Lineage | None = None
    base_model: str | None = None
    load_code: str = ""  # the example's line(s) that produce `m`
    tags: tuple[str, ...] = field(default_factory=tuple)
    has_tiny: bool = False
    is_release: bool = False  # a card for an upload of a loaded model, not the registry card of an entry
    random_only: bool = False  # an entry without weights: zoo.load builds it with random init (tiny=True)

    @property
    def pipeline_tag(self) -> str:
        return _PIPELINE_TAGS.get(self.model_type, "text-generation")

    @property
    def model_type(self) -> str:
        return str(self.hf_config.get("model_type", "unknown"))


# ----------------------------------------------------------------------------------------------------------------
# Gathering facts


def load_results(cards_dir: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Read the committed results table: `{"results": {entry_name: [row, ...]}}`.

    Each row has `benchmark`, `metric`, `value` and `source` (where the number comes from: a zoo eval command
    and its settings, or the upstream model card), optionally `setting` (e.g. "reasoning on, pass@1").

    Raises:
        ConfigError: the file is not valid JSON or a row misses a field (naming the file and entry).
    """
    path = (cards_dir or CARDS_DIR) / RESULTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from e
    results = data.get("results", {}) if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ConfigError(f"{path}: expected an object with a 'results' mapping of entry name -> rows")
    for name, rows in results.items():
        for i, row in enumerate(rows):
            missing = {"benchmark", "metric", "value", "source"} - set(row)
            if missing:
                raise ConfigError(f"{path}: results[{name!r}][{i}] misses {sorted(missing)}")
    return results


def _language_config(hf_config: dict[str, Any]):
    """The LMConfig of a model: its own config, or its `text_config`/`llm_config` for multimodal models."""
    from zoo.language.config import SUPPORTED_MODEL_TYPES, LMConfig

    if hf_config.get("model_type") in SUPPORTED_MODEL_TYPES:
        return LMConfig.from_hf(hf_config)
    for key in ("text_config", "llm_config"):
        sub = hf_config.get(key)
        if isinstance(sub, dict):
            return LMConfig.from_hf(sub)
    raise ConfigError(f"config.json of model_type {hf_config.get('model_type')!r} has no language model config "
                      "(expected a supported model_type or a text_config/llm_config)")


def count_parameters(hf_config: dict[str, Any]) -> int | None:
    """Exact parameter count of the model a config.json describes, without allocating weights (meta device).

    Tied embeddings count once, as `model.parameters()` does. None when no model class serves the config's
    `model_type` yet.
    """
    import torch

    from zoo.registry import architecture_class

    try:
        cls = architecture_class(hf_config.get("model_type"))
    except ConfigError:  # an entry whose model class is not registered yet: the card says "n/a"
        return None
    with torch.device("meta"):
        model = cls.from_hf_config(hf_config)
    return sum(p.numel() for p in model.parameters())


def memory_rows(name_or_config: Any) -> tuple[MemoryRow, ...]:
    """The memory plan at each of `CONTEXTS` (batch 1, bf16); empty while `zoo.memory` is not installed."""
    try:
        from zoo.memory import memory_plan
    except ImportError:
        return ()

    rows = []
    for ctx in CONTEXTS:
        plan = memory_plan(name_or_config, ctx, batch=1, dtype="bfloat16")
        rows.append(MemoryRow(ctx, plan.weights_bytes, plan.kv_bytes, plan.ssm_bytes, plan.total_bytes))
    return tuple(rows)


def recipe_summaries(entry_name: str, stages: tuple[str, ...] | list[str]) -> tuple[RecipeSummary, ...]:
    """Summaries of an entry's published recipes, read from `zoo/training/recipes/ENTRY/STAGE.yaml`."""
    root = Path(__file__).resolve().parent / "training" / "recipes" / entry_name
    out = []
    for stage in stages:
        path = root / f"{stage}.yaml"
        rel = f"zoo/training/recipes/{entry_name}/{stage}.yaml"
        facts: list[tuple[str, str]] = [("status", "listed by the entry; the YAML is not in this checkout yet")]
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML: {e}") from e
            facts = _recipe_facts(data)
        out.append(RecipeSummary(stage, rel, tuple(facts)))
    return tuple(out)


def _recipe_facts(data: Any) -> list[tuple[str, str]]:
    """The few facts a reader wants from a recipe YAML: what it does, on what data, how long, how fast.

    Read defensively (any missing or oddly shaped field is skipped): the recipe's own loader validates it, the card
    only summarises.
    """
    if not isinstance(data, dict):
        return []

    def section(key: str) -> dict[str, Any]:
        value = data.get(key)
        return value if isinstance(value, dict) else {}

    facts: list[tuple[str, str]] = []
    if data.get("description"):
        facts.append(("what", " ".join(str(data["description"]).split())))
    sources = section("data").get("sources")
    names = [str(s["name"]) for s in sources if isinstance(s, dict) and s.get("name")] if isinstance(sources, list) \
        else []
    if names:
        facts.append(("data", ", ".join(names)))
    for label, value in (("sequence length", section("data").get("seq_len")), ("steps", section("train").get("steps")),
                         ("peak lr", section("optim").get("lr")), ("schedule", section("schedule").get("kind"))):
        if value is not None and value != "":
            facts.append((label, str(value)))
    facts.append(("CPU profile", "yes (`--tiny`)" if "tiny" in data else "no"))
    return facts


def _license_of(value: str | None) -> str:
    return (value or "other").strip().lower()


def _papers_of(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _result_rows(entry: Any, results: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, Any], ...]:
    """Evaluation rows of an entry: numbers the registry carries (as published upstream), then committed ones."""
    rows: list[dict[str, Any]] = []
    for benchmark, value in (entry.results or {}).items():
        rows.append({"benchmark": benchmark, "metric": "", "value": value, "source": "published (registry entry)"})
    rows.extend(results.get(entry.name, ()))
    return tuple(rows)


def facts_from_entry(entry: Any, results: dict[str, list[dict[str, Any]]] | None = None) -> CardFacts:
    """Gather the card facts of a registry entry (`zoo.registry.Entry`)."""
    results = load_results() if results is None else results
    hf_config = dict(entry.config or entry.tiny)
    random_only = not entry.hub_repo and entry.local_dir is None
    return CardFacts(
        title=entry.name,
        entry_name=entry.name,
        repo_id=entry.hub_repo or None,
        revision=entry.revision,
        description=(entry.description or "").strip(),
        hf_config=hf_config,
        license=_license_of(entry.license),
        papers=_papers_of(entry.paper),
        chat_format=entry.chat_format,
        params=count_parameters(hf_config),
        memory=memory_rows(entry.name),
        recipes=recipe_summaries(entry.name, tuple(entry.recipes or ())),
        results=_result_rows(entry, results),
        base_model=entry.base_model,
        # entries with no published or shipped weights exist only as random-init tiny models
        load_code=(f'm = zoo.load("{entry.name}", tiny=True)' if random_only else f'm = zoo.load("{entry.name}")'),
        tags=(entry.family, *entry.tags),
        has_tiny=bool(entry.tiny) and not random_only,
        random_only=random_only,
    )


def facts_from_model(model: Any, repo_id: str, lineage: Lineage | None = None,
                     results: dict[str, list[dict[str, Any]]] | None = None) -> CardFacts:
    """Gather the card facts of a loaded model about to be released as `repo_id`.

    The entry (when the model came from one) supplies description, license, papers and recipes; the model's own
    `hf_config` supplies the architecture, so a pruned model's card shows its pruned shape.
    """
    entry = getattr(model, "entry", None)
    # The config the release writes (a pruned model exports its pruned shape), not the one it was loaded from.
    hf_config = dict(model.export_hf_config() if hasattr(model, "export_hf_config") else model.hf_config)
    results = load_results() if results is None else results
    base = lineage.base_model if lineage else (entry.hub_repo or None if entry is not None else None)
    # Evaluation rows of the entry describe the entry's weights; a derived model has none until it is evaluated.
    rows = _result_rows(entry, results) if entry is not None and lineage is None else ()
    return CardFacts(
        title=repo_id.split("/")[-1],
        entry_name=entry.name if entry is not None else None,
        repo_id=repo_id,
        revision=None,
        # A derived model is not what the entry describes; its Lineage section says what it is.
        description=(entry.description or "").strip() if entry is not None and lineage is None else "",
        hf_config=hf_config,
        license=_license_of(entry.license if entry is not None else None),
        papers=_papers_of(entry.paper if entry is not None else None),
        chat_format=getattr(model, "chat_format", None),
        params=sum(p.numel() for p in model.parameters()),
        memory=memory_rows(hf_config) if _has_lm(hf_config) else (),
        recipes=recipe_summaries(entry.name, tuple(entry.recipes or ())) if entry is not None else (),
        results=rows,
        lineage=lineage,
        base_model=base,
        # zoo.load takes entry names and local folders: a released repo goes through the HF cache first.
        is_release=True,
        load_code=f'm = zoo.load(snapshot_download("{repo_id}"))',
        tags=(entry.family, *entry.tags) if entry is not None else (),
    )


def _has_lm(hf_config: dict[str, Any]) -> bool:
    try:
        _language_config(hf_config)
    except (ConfigError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Rendering


def front_matter(facts: CardFacts) -> dict[str, Any]:
    """The Hub metadata block: a plain dict that `yaml.safe_dump` writes and any YAML parser reads back."""
    meta: dict[str, Any] = {}
    if facts.license in _HUB_LICENSES:
        meta["license"] = facts.license
    else:
        meta["license"] = "other"
        meta["license_name"] = facts.license
        if facts.license in _LICENSE_LINKS:
            meta["license_link"] = _LICENSE_LINKS[facts.license]
    meta["library_name"] = "transformers"
    meta["pipeline_tag"] = facts.pipeline_tag
    if facts.base_model:
        meta["base_model"] = facts.base_model
        if facts.lineage is not None:
            meta["base_model_relation"] = facts.lineage.relation
    tags = ["nemotron-zoo", "nvidia", facts.model_type, *facts.tags]
    if facts.chat_format:
        tags.append(facts.chat_format)
        doc = CHAT_FORMATS.get(facts.chat_format)
        if doc is not None and doc.budget:  # formats whose replies reason inside <think>
            tags.append("reasoning")
    if facts.lineage is not None:
        tags.append(facts.lineage.relation)
    meta["tags"] = list(dict.fromkeys(t for t in tags if t))  # de-duplicated, order kept
    return meta


def _fmt_count(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit} ({n:,})"
    return f"{n:,}"


def _fmt_ctx(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def compress_pattern(pattern: str) -> str:
    """Write a pattern that repeats a short unit as `(unit)×n` (Llama's `*-*-*-...`), else return it as is."""
    for size in range(1, min(8, len(pattern) // 2) + 1):
        unit = pattern[:size]
        if len(pattern) % size == 0 and unit * (len(pattern) // size) == pattern:
            return f"({unit})×{len(pattern) // size}"
    return pattern


def architecture_rows(hf_config: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of the architecture table: the language backbone first, then any vision/audio tower."""
    cfg = _language_config(hf_config)
    kinds = Counter(b.mixer for b in cfg.blocks)
    rows: list[tuple[str, str]] = [
        ("model_type", f"`{hf_config.get('model_type')}`"),
        ("architectures", ", ".join(f"`{a}`" for a in hf_config.get("architectures", [])) or "n/a"),
        ("block pattern", f"`{compress_pattern(cfg.pattern)}`"),
        ("blocks", ", ".join(f"{kinds[k]} {k}" for k in ("mamba", "attention", "mlp", "linear") if kinds[k])),
        ("hidden size", str(cfg.hidden_size)),
        ("vocabulary", str(cfg.vocab_size)),
    ]
    if kinds["attention"]:
        rows.append(("attention", f"{cfg.num_attention_heads} heads, {cfg.num_key_value_heads} KV heads, "
                                  f"head dim {cfg.head_dim}"))
        pos = "none (NoPE)" if cfg.rope is None else f"RoPE, theta {cfg.rope.theta:g}"
        if cfg.rope is not None and cfg.rope.scaling:
            pos += f" ({cfg.rope.scaling.get('rope_type', cfg.rope.scaling.get('type', 'scaled'))})"
        rows.append(("positions", pos))
    if kinds["mlp"]:
        widths = sorted({cfg.block_intermediate(b) for b in cfg.blocks if b.mixer == "mlp"})
        width = str(widths[0]) if len(widths) == 1 else f"{widths[0]}–{widths[-1]} (varies per block)"
        rows.append(("MLP", f"{cfg.mlp_activation}, intermediate {width}"))
    if kinds["mamba"]:
        rows.append(("Mamba-2", f"{cfg.mamba_num_heads} heads × {cfg.mamba_head_dim}, state {cfg.ssm_state_size}, "
                                f"{cfg.n_groups} groups, conv {cfg.conv_kernel}"))
    rows.append(("max positions", str(cfg.max_position_embeddings)))
    rows.append(("tied embeddings", "yes" if cfg.tie_word_embeddings else "no"))
    for key, label in (("vision_config", "vision tower"), ("audio_config", "audio tower")):
        sub = hf_config.get(key)
        if isinstance(sub, dict):
            width = sub.get("hidden_size", sub.get("d_model", "?"))
            depth = sub.get("num_hidden_layers", sub.get("encoder_layers", "?"))
            rows.append((label, f"`{sub.get('model_type', '?')}`, {depth} layers, width {width}"))
    return rows


_TEMPLATE = """\
---
{{ front_matter }}---

# {{ f.title }}

{% if f.description %}{{ f.description }}

{% endif -%}
{% if f.is_release and f.entry_name %}This card is generated by nemotron-zoo for a release of the registry entry \
`{{ f.entry_name }}`. \
{% elif f.entry_name %}This card is generated by nemotron-zoo from the registry entry `{{ f.entry_name }}`. \
{% else %}This card is generated by nemotron-zoo. {% endif -%}
The weights use the upstream Hugging Face layout (sharded safetensors with an index, `config.json`), so \
`zoo.load`{% if native %}, transformers{% endif %} and vLLM read the same files.
{% if f.random_only %}
This entry has no published weights: `zoo.load("{{ f.entry_name }}", tiny=True)` builds it with random weights, \
for tests, examples and laptops.
{% endif %}{% if not f.is_release and f.repo_id %}
Checkpoint: [{{ f.repo_id }}](https://huggingface.co/{{ f.repo_id }}){% if f.revision %} at revision \
`{{ f.revision }}`{% endif %}.
{% endif %}{% if f.lineage %}

## Lineage

| | |
|---|---|
| base model | `{{ f.lineage.base_model }}` |
| relation | {{ f.lineage.relation }} |
{% if f.lineage.method %}| method | {{ f.lineage.method }} |
{% endif %}{% if f.lineage.recipe %}| recipe | `{{ f.lineage.recipe }}` |
{% endif %}{% if f.lineage.data %}| data | {{ f.lineage.data }} |
{% endif %}{% endif %}

## Architecture

| | |
|---|---|
| parameters | {{ params }} |
{% for k, v in arch %}| {{ k }} | {{ v }} |
{% endfor %}
{% if pattern_note %}{{ pattern_note }}
{% endif %}
{% if f.memory %}
## Memory plan

{{ unit }} to serve one sequence: weights, KV cache and Mamba conv window in bf16, Mamba SSM state in fp32 \
as vLLM keeps it; activations are not included. The KV cache grows with the context, the Mamba state does not \
(`zoo.memory_plan`).

| context | weights | KV cache | Mamba state | total |
|---|---|---|---|---|
{% for r in f.memory %}| {{ ctx(r.context) }} | {{ size(r.weights) }} | {{ size(r.kv) }} | {{ size(r.ssm) }} \
| {{ size(r.total) }} |
{% endfor %}
{% endif %}
## Chat format
{% if chat %}

`{{ f.chat_format }}`: {{ chat.summary }}

{{ chat.toggle }}
{% else %}

None: a base model. Prompt it with plain text (`m.generate`), not `m.chat`.
{% endif %}

## Usage

```python
{% if f.is_release %}from huggingface_hub import snapshot_download

{% endif %}import zoo

{{ f.load_code }}
{% if chat %}reply = m.chat("Solve 2x + 3 = 7."{% if chat.budget %}, thinking_budget=512{% endif %})
print(reply.reasoning)
print(reply.text)
{% if chat.switch_off %}fast = m.chat("What is 17 * 23?", thinking=False)  # reasoning off
{% endif %}{% if f.pipeline_tag == "image-text-to-text" %}seen = m.chat("Describe this image.", images=["photo.jpg"])
clip = m.chat("What happens in this video?", videos=["clip.mp4"])
{% elif f.pipeline_tag == "audio-text-to-text" %}heard = m.chat("What can you hear?", audios=["clip.wav"])
{% endif %}{% else %}ids = m.tokenizer("The capital of France is", return_tensors="pt").input_ids
out = m.generate(ids, max_new_tokens=16)
{% endif %}```
{% if tiny %}
`zoo.load("{{ f.entry_name }}", tiny=True)` builds the same block pattern at tiny width with random weights (no \
download), for tests and laptops.
{% endif %}
{% if native and f.repo_id %}

With transformers ({{ auto_class }}):

```python
from transformers import AutoTokenizer, {{ auto_class }}

tok = AutoTokenizer.from_pretrained("{{ f.repo_id }}")
model = {{ auto_class }}.from_pretrained("{{ f.repo_id }}", dtype="bfloat16")
```
{% endif %}
{% if f.recipes %}

## Recipes

{% if f.is_release %}The recipes published for `{{ f.entry_name }}`{% else %}The published recipes{% endif %} \
ship as runnable YAML; those with a CPU profile also run at tiny scale on a laptop (`--tiny`).

{% for r in f.recipes %}- **{{ r.stage }}** (`{{ r.path }}`): `zoo train {{ f.entry_name }} {{ r.stage }} [--tiny]`
{% for k, v in r.facts %}  - {{ k }}: {{ v }}
{% endfor %}{% endfor %}
{% endif %}
{% if f.papers %}

## Papers

{% for p in papers %}- {{ p }}
{% endfor %}
{% endif %}

## License

{{ license_text }}

## Evaluation

{% if f.results %}| benchmark | metric | setting | value | source |
|---|---|---|---|---|
{% for r in f.results %}| {{ r.benchmark }} | {{ r.metric }} | {{ r.get("setting", "") }} | {{ r.value }} \
| {{ r.source }} |
{% endfor %}{% elif f.is_release %}No evaluation results recorded for this release.
{% else %}No results recorded yet. Results come from `model_cards/results.json` (one list of rows per \
entry: benchmark, metric, value, source); add rows there and run `zoo card --all --write`.
{% endif %}"""

_AUTO_CLASSES = {"qwen2_audio": "Qwen2AudioForConditionalGeneration"}


def render(facts: CardFacts) -> str:
    """Render a card (front matter + markdown) from its facts. Deterministic: same facts, same bytes."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    arch = architecture_rows(facts.hf_config)
    meta = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True, width=1000)
    license_text = f"`{facts.license}`"
    if facts.license in _LICENSE_LINKS:
        license_text += f": {_LICENSE_LINKS[facts.license]}"
    license_text += "."
    if facts.lineage is not None:
        license_text += f" Derived from `{facts.lineage.base_model}`: its license terms apply as well."
    # GiB for real models; tiny ones would print 0.00 everywhere, so their table is in MiB.
    big = any(r.total >= _GIB for r in facts.memory)
    unit_bytes, unit_text = (_GIB, "GiB (2^30 bytes)") if big else (1024**2, "MiB (2^20 bytes)")
    text = env.from_string(_TEMPLATE).render(
        f=facts,
        front_matter=meta,
        params=_fmt_count(facts.params),
        arch=arch,
        pattern_note=_pattern_note(facts.hf_config),
        chat=CHAT_FORMATS.get(facts.chat_format) if facts.chat_format else None,
        native=facts.model_type in TRANSFORMERS_NATIVE,
        auto_class=_AUTO_CLASSES.get(facts.model_type, "AutoModelForCausalLM"),
        license_text=license_text,
        papers=[_paper_link(p) for p in facts.papers],
        tiny=facts.has_tiny,
        ctx=_fmt_ctx,
        unit=unit_text,
        size=lambda n: f"{n / unit_bytes:.2f}",
    )
    # Collapse the blank-line runs that optional sections leave behind, so cards stay tidy markdown.
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" and lines and lines[-1] == "":
            continue
        lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"


def _paper_link(paper: str) -> str:
    """An arXiv id becomes a link to its abstract page; anything else (a URL, a title) is shown as given."""
    if re.fullmatch(r"\d{4}\.\d{4,5}(v\d+)?", paper):
        return f"[arXiv:{paper}](https://arxiv.org/abs/{paper})"
    return paper


def _pattern_note(hf_config: dict[str, Any]) -> str:
    cfg = _language_config(hf_config)
    return ("Block pattern: one character per residual block, `M` Mamba-2, `*` attention, `-` MLP, `L` linear "
            f"(no-op blocks of pruned layers are absent); {cfg.num_layers} blocks in all.")


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def render_card(name: str) -> str:
    """Render the card of a registry entry.

    Raises:
        UnknownModelError: `name` is not a registry entry.
    """
    from zoo.registry import get_entry

    return render(facts_from_entry(get_entry(name)))


def render_model_card(model: Any, repo_id: str, lineage: Lineage | None = None) -> str:
    """Render the README.md of a release of `model` as `repo_id`, with its lineage when it is a derived model."""
    return render(facts_from_model(model, repo_id, lineage))


def card_path(name: str, cards_dir: Path | None = None) -> Path:
    """Where the generated card of entry `name` is committed."""
    return (cards_dir or CARDS_DIR) / f"{name}.md"


def write_cards(names: list[str], cards_dir: Path | None = None, *, prune: bool = False) -> list[Path]:
    """Write the card of each entry (atomically, file by file) and return the paths that changed.

    Args:
        names: registry entry names.
        cards_dir: target folder (default: `model_cards/` of the checkout).
        prune: also delete `*.md` cards whose entry is no longer registered (with `--all`).
    """
    import os
    import tempfile

    out_dir = cards_dir or CARDS_DIR
    if not out_dir.parent.is_dir():
        raise ZooError(f"{out_dir}: no such folder (card writing needs a source checkout)")
    out_dir.mkdir(exist_ok=True)
    changed = []
    for name in names:
        text = render_card(name)
        path = card_path(name, out_dir)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        changed.append(path)
    if prune:
        keep = {f"{n}.md" for n in names}
        for path in sorted(out_dir.glob("*.md")):
            if path.name not in keep:
                path.unlink()
                changed.append(path)
    return changed
