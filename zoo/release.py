"""Releases: write a model as a Hub-ready folder, prove it loads, then upload it.

A release folder holds exactly what the upstream repos hold, so `zoo.load`, transformers and vLLM read it alike:

* `config.json`, weights as safetensors (`model-0000i-of-0000n.safetensors` + `model.safetensors.index.json` when
  over the shard size), `generation_config.json` (token ids, plus the recommended sampling of reasoning formats);
* the tokenizer files and its chat template (`chat_template.jinja`) when the model has a tokenizer;
* `zoo.json` (chat format, entry, lineage) and `README.md`, the model card rendered by `zoo.cards`.

`validate_release` reloads the folder with `zoo.load` and compares logits on a fixed prompt with the model in
memory; for the families transformers implements natively it loads the folder with transformers too and compares
again. `push_to_hub` runs both before talking to the Hub: a failed validation creates no repo and uploads nothing.
The upload is `HfApi.create_repo(exist_ok=True)` (+ `create_branch` for a revision) then `HfApi.upload_folder`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from zoo.cards import TRANSFORMERS_NATIVE, Lineage, render_model_card
from zoo.errors import ZooError

__all__ = [
    "ReleaseError",
    "ReleaseValidationError",
    "ValidationReport",
    "build_release",
    "fixed_prompt",
    "push_folder",
    "push_to_hub",
    "read_lineage_file",
    "validate_release",
]

# Sampling the model cards recommend with reasoning on (temperature 0.6, top_p 0.95), for formats that reason.
_REASONING_SAMPLING = {"do_sample": True, "temperature": 0.6, "top_p": 0.95}
_REASONING_FORMATS = ("nemotron-v2", "llama-nemotron", "llama-nemotron-v1.5", "deepseek-r1")
# The transformers class that loads each natively supported model_type (causal LMs use the auto class).
_TRANSFORMERS_CLASSES = {"qwen2_audio": "Qwen2AudioForConditionalGeneration"}
PROMPT_TEXT = "The quick brown fox jumps over the lazy dog. 1 + 2 = 3."
PROMPT_LENGTH = 12


class ReleaseError(ZooError):
    """A release folder or upload request is malformed (missing file, bad repo id, bad lineage)."""


class ReleaseValidationError(ReleaseError):
    """The release folder does not reload to the same model; nothing was uploaded."""


@dataclass
class ValidationReport:
    """What `validate_release` checked.

    Attributes:
        folder: the release folder.
        zoo_max_abs_diff: max |logit difference| between the model in memory and `zoo.load(folder)`.
        transformers_max_abs_diff: the same against transformers, None when transformers has no native class.
        checks: one line per passed check, for logs and the CLI.
    """

    folder: Path
    zoo_max_abs_diff: float = float("nan")
    transformers_max_abs_diff: float | None = None
    checks: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# Building the folder


def _as_lineage(lineage: Lineage | dict[str, Any] | None, model: Any) -> Lineage | None:
    """The release lineage: the argument, else what the model carries (`model.lineage`, set by training/loading)."""
    if isinstance(lineage, Lineage):
        return lineage
    if lineage is None:
        lineage = getattr(model, "lineage", None)
    if lineage is None:
        return None
    if not isinstance(lineage, dict):
        raise ReleaseError(f"lineage must be a zoo.cards.Lineage or a dict, got {type(lineage).__name__}")
    return Lineage.from_dict(lineage, source="model.lineage")


def _generation_config(folder: Path, chat_format: str | None) -> None:
    """Add the recommended sampling of reasoning formats to the generation_config.json written by save_pretrained."""
    path = folder / "generation_config.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if chat_format in _REASONING_FORMATS:
        data.update(_REASONING_SAMPLING)
    data.pop("_from_model_config", None)  # hand-tuned now, no longer a copy of config.json
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _chat_template(folder: Path, model: Any) -> None:
    """Make sure a chat model's tokenizer ships a chat template the folder's other readers can use.

    transformers 5 writes `tokenizer.chat_template` to `chat_template.jinja` on save; when the tokenizer has none
    but the model has a chat format, `zoo.chat.jinja_template(fmt)` supplies the Jinja form of that format.
    """
    tokenizer = getattr(model, "tokenizer", None)
    fmt = getattr(model, "chat_format", None)
    if tokenizer is None or fmt is None or (folder / "chat_template.jinja").is_file():
        return
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        try:
            from zoo.chat import jinja_template
        except ImportError:  # zoo.chat has no Jinja export: the tokenizer files stand as they are
            return
        template = jinja_template(fmt)
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")


def build_release(model: Any, out_dir: str | Path, *, repo_id: str, lineage: Lineage | dict[str, Any] | None = None,
                  max_shard_size: int = 5 * 1024**3) -> Path:
    """Write the release folder of `model` at `out_dir` (atomically: a temp dir renamed into place when complete).

    Args:
        model: a loaded zoo model (`zoo.load(...)`, possibly fine-tuned or pruned).
        out_dir: where the folder goes; an existing folder there is replaced.
        repo_id: the Hub repo it is meant for (named in the card).
        lineage: where the model came from; defaults to `model.lineage`.
        max_shard_size: bytes per safetensors shard (5 GiB as upstream; smaller values give more shards).

    Returns:
        The folder path.
    """
    from zoo import hub
    from zoo.loading import save_pretrained

    _check_repo_id(repo_id)
    lin = _as_lineage(lineage, model)
    out = Path(out_dir)
    with hub.AtomicDirectory(out) as tmp:
        weights = save_pretrained(model, tmp / "files", max_shard_size=max_shard_size,
                                  lineage=lin.to_dict() if lin else None)
        for item in weights.iterdir():
            os.replace(item, tmp / item.name)
        weights.rmdir()
        _generation_config(tmp, getattr(model, "chat_format", None))
        _chat_template(tmp, model)
        (tmp / "README.md").write_text(render_model_card(model, repo_id, lin), encoding="utf-8")
    return out


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise ReleaseError(f"repo id {repo_id!r} must look like 'namespace/name'")


# ----------------------------------------------------------------------------------------------------------------
# Validation


def _vocab_size(hf_config: dict[str, Any]) -> int:
    for cfg in (hf_config, hf_config.get("text_config") or {}, hf_config.get("llm_config") or {}):
        if cfg.get("vocab_size"):
            return int(cfg["vocab_size"])
    raise ReleaseError("config.json has no vocab_size (nor a text_config.vocab_size)")


def fixed_prompt(hf_config: dict[str, Any]) -> torch.Tensor:
    """A deterministic (1, PROMPT_LENGTH) prompt of ordinary token ids: no image/audio placeholder, no id 0.

    Token ids, not text, so the check does not depend on a tokenizer; the tokenizer gets its own check.
    """
    vocab = _vocab_size(hf_config)
    reserved = {v for k, v in _walk(hf_config) if isinstance(v, int) and k.endswith(("token_index", "token_id"))}
    ids: list[int] = []
    i = 0
    while len(ids) < PROMPT_LENGTH:
        tok = 1 + (i * 7919 + 13) % (vocab - 1)  # a prime stride spreads the ids over the whole vocabulary
        if tok not in reserved:
            ids.append(tok)
        i += 1
    return torch.tensor([ids], dtype=torch.long)


def _walk(cfg: dict[str, Any]):
    for k, v in cfg.items():
        if isinstance(v, dict):
            yield from _walk(v)
        else:
            yield k, v


def _logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(ids.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
    return out.logits.float().cpu()


def _tolerance(dtype: torch.dtype, ref: torch.Tensor) -> float:
    """Absolute logit tolerance: tight for fp32, scaled to the logits' magnitude for 16-bit weights."""
    scale = max(1.0, float(ref.abs().max()))
    return (1e-4 if dtype == torch.float32 else 2e-2) * scale


def _check_files(folder: Path) -> list[str]:
    """The folder has what a Hub repo of this model needs; returns the checks passed."""
    checks = []
    for name in ("config.json", "generation_config.json", "README.md"):
        if not (folder / name).is_file():
            raise ReleaseValidationError(f"{folder}: missing {name}")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ReleaseValidationError(f"{index}: names shard(s) {missing} that are not in the folder")
        checks.append(f"weights: {len(shards)} safetensors shards + index")
    elif (folder / "model.safetensors").is_file():
        checks.append("weights: model.safetensors")
    else:
        raise ReleaseValidationError(f"{folder}: no model.safetensors nor model.safetensors.index.json")
    text = (folder / "README.md").read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise ReleaseValidationError(f"{folder / 'README.md'}: no YAML front matter")
    try:
        meta = yaml.safe_load(text[4:text.index("\n---\n", 4)])
    except yaml.YAMLError as e:
        raise ReleaseValidationError(f"{folder / 'README.md'}: front matter is not valid YAML: {e}") from e
    missing_keys = {"license", "library_name", "pipeline_tag", "tags"} - set(meta or {})
    if missing_keys:
        raise ReleaseValidationError(f"{folder / 'README.md'}: front matter misses {sorted(missing_keys)}")
    checks.append("README.md: front matter parses")
    return checks


def _check_tokenizer(folder: Path, model: Any, reloaded: Any) -> list[str]:
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return []
    new = getattr(reloaded, "tokenizer", None)
    if new is None:
        raise ReleaseValidationError(f"{folder}: the model has a tokenizer but the folder reloads without one")
    if tok(PROMPT_TEXT)["input_ids"] != new(PROMPT_TEXT)["input_ids"]:
        raise ReleaseValidationError(f"{folder}: the saved tokenizer encodes the check prompt differently")
    template = getattr(tok, "chat_template", None)
    if template and getattr(new, "chat_template", None) != template:
        raise ReleaseValidationError(f"{folder}: the saved tokenizer lost or changed its chat template")
    return ["tokenizer: reloads and encodes identically"]


def _transformers_logits(folder: Path, model_type: str, ids: torch.Tensor) -> torch.Tensor:
    """Logits of the folder loaded by transformers (fp32, CPU), refusing missing or unexpected weights."""
    import transformers

    cls = getattr(transformers, _TRANSFORMERS_CLASSES.get(model_type, "AutoModelForCausalLM"))
    try:
        hf_model, info = cls.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    except Exception as e:
        raise ReleaseValidationError(f"{folder}: transformers cannot load it ({type(e).__name__}: {e})") from e
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ReleaseValidationError(f"{folder}: transformers reports {bad}")
    hf_model.eval()
    with torch.no_grad():
        return hf_model(input_ids=ids).logits.float()


def validate_release(folder: str | Path, model: Any, *, check_transformers: bool = True) -> ValidationReport:
    """Prove that `folder` is `model`: same logits through `zoo.load` and, where it can, through transformers.

    Args:
        folder: a release folder written by `build_release`.
        model: the model it was written from (the reference).
        check_transformers: also load with transformers for the natively supported families (nemotron_h, llama,
            qwen2, qwen2_audio); set False to skip the second full copy of the weights in memory.

    Raises:
        ReleaseValidationError: a file is missing, the reload fails, or logits differ beyond tolerance; the
            message names the folder and the numbers.
    """
    import zoo.loading

    folder = Path(folder)
    report = ValidationReport(folder)
    report.checks += _check_files(folder)
    ids = fixed_prompt(model.hf_config)
    first = next(model.parameters())
    dtype = first.dtype
    ref = _logits(model, ids)
    try:
        # Same dtype and device as the reference, so the comparison sees the files and nothing else.
        reloaded = zoo.loading.load(folder, dtype=dtype, device=first.device)
    except ZooError as e:
        raise ReleaseValidationError(f"{folder}: zoo.load fails on the release: {e}") from e
    got = _logits(reloaded, ids)
    if got.shape != ref.shape:
        raise ReleaseValidationError(f"{folder}: reloaded logits have shape {tuple(got.shape)}, "
                                     f"expected {tuple(ref.shape)}")
    report.zoo_max_abs_diff = float((got - ref).abs().max())
    tol = _tolerance(dtype, ref)
    if not report.zoo_max_abs_diff <= tol:  # `not <=` also catches NaN
        raise ReleaseValidationError(f"{folder}: zoo.load logits differ from the model's by "
                                     f"{report.zoo_max_abs_diff:.3g} (tolerance {tol:.3g})")
    report.checks.append(f"zoo.load: logits match (max |diff| {report.zoo_max_abs_diff:.2e})")
    report.checks += _check_tokenizer(folder, model, reloaded)
    del reloaded
    model_type = str(model.hf_config.get("model_type"))
    if check_transformers and model_type in TRANSFORMERS_NATIVE:
        # Compare fp32 to fp32: the zoo side reloads in fp32 so 16-bit releases are judged on their weights alone.
        zoo32 = _logits(zoo.loading.load(folder, dtype=torch.float32), ids)
        theirs = _transformers_logits(folder, model_type, ids)
        diff = float((theirs - zoo32).abs().max()) if theirs.shape == zoo32.shape else float("inf")
        report.transformers_max_abs_diff = diff
        tol32 = _tolerance(torch.float32, zoo32)
        if not diff <= tol32:
            raise ReleaseValidationError(f"{folder}: transformers logits differ from zoo.load's by {diff:.3g} "
                                         f"(tolerance {tol32:.3g})")
        report.checks.append(f"transformers: logits match (max |diff| {diff:.2e})")
    return report


# ----------------------------------------------------------------------------------------------------------------
# Upload


def _api(endpoint: str | None, token: str | None):
    from huggingface_hub import HfApi

    # HF_ENDPOINT is read here, not only at huggingface_hub import, so a caller (or a test) can set it late.
    return HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)


def push_to_hub(model: Any, repo_id: str, *, private: bool = False, revision: str | None = None,
                commit_message: str | None = None, token: str | None = None,
                lineage: Lineage | dict[str, Any] | None = None, validate: bool = True,
                check_transformers: bool = True, max_shard_size: int = 5 * 1024**3, endpoint: str | None = None,
                keep_folder: str | Path | None = None) -> Any:
    """Release `model` as Hub repo `repo_id`: build the folder, validate it, then create the repo and upload.

    Args:
        model: a loaded zoo model.
        repo_id: "namespace/name".
        private: create the repo private (ignored when it exists).
        revision: branch to commit to (created from main when missing); None = main.
        commit_message: defaults to "Release <name> with nemotron-zoo".
        token: Hub token; None uses the saved login / HF_TOKEN.
        lineage: base model, recipe and data of a fine-tuned or pruned model (default: `model.lineage`).
        validate: reload and compare before uploading (on by default; off only for debugging).
        check_transformers: include the transformers reload in the validation.
        max_shard_size: bytes per safetensors shard.
        endpoint: Hub URL; default `HF_ENDPOINT` or huggingface.co.
        keep_folder: build the release folder there and keep it (for inspection, or to upload again by hand);
            by default it is built in a temporary directory and deleted after the upload.

    Returns:
        `huggingface_hub.CommitInfo` of the upload commit.

    Raises:
        ReleaseValidationError: validation failed; no repo was created and nothing was uploaded.
    """
    _check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="zoo-release-") as tmp:
        target = Path(keep_folder) if keep_folder is not None else Path(tmp) / "release"
        folder = build_release(model, target, repo_id=repo_id, lineage=lineage, max_shard_size=max_shard_size)
        if validate:
            validate_release(folder, model, check_transformers=check_transformers)
        api = _api(endpoint, token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        name = model.entry.name if getattr(model, "entry", None) is not None else repo_id.split("/")[1]
        return api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                                 commit_message=commit_message or f"Release {name} with nemotron-zoo")


def read_lineage_file(path: Path) -> Lineage | None:
    """A `lineage.json` beside a checkpoint (training code may write one), or None."""
    file = path / "lineage.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ReleaseError(f"{file}: not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ReleaseError(f"{file}: expected a JSON object")
    return Lineage.from_dict(data, source=str(file))


def push_folder(path: str | Path, repo_id: str, *, lineage: Lineage | None = None, **kw: Any) -> Any:
    """`zoo push PATH REPO_ID`: load a local checkpoint directory and release it (see `push_to_hub`).

    The checkpoint is re-written through `build_release`, so whatever layout PATH has, the upload is the upstream
    one; lineage comes from the argument, else PATH/lineage.json, else the checkpoint's zoo.json.
    """
    import zoo.loading

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ReleaseError(f"{path}: not a checkpoint directory (no config.json)")
    model = zoo.loading.load(path)
    lin = lineage or read_lineage_file(path)
    return push_to_hub(model, repo_id, lineage=lin, **kw)
