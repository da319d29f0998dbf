"""Releases end to end: build the folder of a tiny model, validate it, upload it to a local fake Hub.

The fake Hub (tests/fakehub.py) speaks the create_repo / upload_folder subset of the Hub API on 127.0.0.1; xet is
switched off so large files take the LFS path it implements. Every file that arrives is compared byte for byte with
the folder that was validated.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from fakehub import FakeHub

import zoo
from zoo.cards import Lineage
from zoo.errors import ConfigError
from zoo.release import (
    ReleaseError,
    ReleaseValidationError,
    build_release,
    fixed_prompt,
    push_folder,
    push_to_hub,
    validate_release,
)

TOKEN = "hf_fake_token"
SHARD = 60_000  # bytes: small enough that the tiny models are written as several shards + an index
TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"


@pytest.fixture(autouse=True)
def _offline_hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No saved token, no real endpoint, and the LFS upload path (the fake Hub does not speak xet)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch):
    with FakeHub(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture(scope="module")
def llama() -> torch.nn.Module:
    return zoo.load("llama-nemotron-nano-8b", tiny=True, seed=0)


@pytest.fixture(scope="module")
def hybrid_release(tmp_path_factory: pytest.TempPathFactory):
    model = zoo.load("nano-9b-v2", tiny=True, seed=0)
    # A tokenizer with a chat template (a copy: tiny tokenizers are cached and shared between tests).
    model.tokenizer = copy.deepcopy(model.tokenizer)
    model.tokenizer.chat_template = TEMPLATE
    folder = build_release(model, tmp_path_factory.mktemp("rel") / "nano", repo_id="me/nano-tiny-release",
                           max_shard_size=SHARD)
    return model, folder


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ----------------------------------------------------------------------------------------------------------------
# The folder


def test_release_folder_has_upstream_layout(hybrid_release) -> None:
    model, folder = hybrid_release
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "README.md", "model.safetensors.index.json",
            "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "zoo.json"} <= names
    assert (folder / "chat_template.jinja").read_text() == TEMPLATE
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and shards <= names
    # upstream nemotron_h keys on disk (backbone.*), never our internal names
    assert all(k.startswith(("backbone.", "lm_head.")) for k in index["weight_map"])
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "nemotron_h"
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["eos_token_id"] == config["eos_token_id"]
    assert gen["temperature"] == 0.6 and gen["top_p"] == 0.95  # nemotron-v2 reasons: recommended sampling
    text = (folder / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "nvidia/NVIDIA-Nemotron-Nano-9B-v2"  # a re-release of the entry's weights
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert 'snapshot_download("me/nano-tiny-release")' in text
    assert f"{sum(p.numel() for p in model.parameters()):,}" in text  # the tiny model's own size


def test_release_loads_in_zoo_and_transformers_with_identical_logits(hybrid_release) -> None:
    from transformers import AutoModelForCausalLM

    model, folder = hybrid_release
    ids = fixed_prompt(model.hf_config)
    with torch.no_grad():
        ours = model(ids).logits
        reloaded = zoo.load(folder)(ids).logits
        theirs = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)(input_ids=ids).logits
    torch.testing.assert_close(reloaded, ours, rtol=0, atol=0)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    assert zoo.load(folder).tokenizer.chat_template == TEMPLATE
    report = validate_release(folder, model)
    assert report.zoo_max_abs_diff == 0.0
    assert report.transformers_max_abs_diff is not None and report.transformers_max_abs_diff < 1e-4


def test_fixed_prompt_avoids_placeholder_tokens() -> None:
    cfg = {"vocab_size": 64, "image_token_index": 1 + 13 % 63, "text_config": {"vocab_size": 64}}
    ids = fixed_prompt(cfg)
    assert ids.shape == (1, 12) and int(ids.min()) >= 1 and int(ids.max()) < 64
    assert cfg["image_token_index"] not in ids.tolist()[0]


def test_bad_repo_id_is_a_clear_error(llama, tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="namespace/name"):
        build_release(llama, tmp_path / "x", repo_id="no-namespace")


# ----------------------------------------------------------------------------------------------------------------
# Upload


def test_push_uploads_every_file_intact(hub: FakeHub, llama, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    info = llama.push_to_hub("me/llama-tiny", token=TOKEN, private=True, max_shard_size=SHARD, keep_folder=kept)
    local = _folder_bytes(kept)
    remote = hub.files("me/llama-tiny")
    assert set(remote) == set(local)
    for name, data in local.items():
        assert remote[name] == data, name
    assert hub.repos["model/me/llama-tiny"].private
    assert info.oid == hub.repos["model/me/llama-tiny"].commits["main"][-1]["oid"]
    # both upload paths ran: LFS bodies (PUT) for shards, inline base64 for small text files
    assert any(m == "PUT" for m, _ in hub.log)
    assert any(p.endswith("/preupload/main") for _, p in hub.log)
    # The repo is usable as released: download it as a user would, load it, same logits.
    from huggingface_hub import snapshot_download

    snapshot = snapshot_download("me/llama-tiny", endpoint=hub.url, token=TOKEN, cache_dir=str(tmp_path / "cache"))
    ids = fixed_prompt(llama.hf_config)
    with torch.no_grad():
        torch.testing.assert_close(zoo.load(snapshot)(ids).logits, llama(ids).logits, rtol=0, atol=0)
    # Pushing the same model again changes nothing: no new commit.
    llama.push_to_hub("me/llama-tiny", token=TOKEN, max_shard_size=SHARD, check_transformers=False)
    assert len(hub.repos["model/me/llama-tiny"].commits["main"]) == 1


def test_push_to_a_branch_with_lineage(hub: FakeHub, llama) -> None:
    lineage = Lineage("nvidia/Llama-3.1-Nemotron-Nano-8B-v1", method="SFT", recipe="llama-nemotron-nano-8b/sft",
                      data="10k math chats (tiny profile)")
    push_to_hub(llama, "me/llama-sft", token=TOKEN, revision="v1", lineage=lineage, check_transformers=False,
                commit_message="first release")
    files = hub.files("me/llama-sft", revision="v1")
    assert hub.files("me/llama-sft") == {}  # main untouched
    meta = yaml.safe_load(files["README.md"].decode().split("---\n")[1])
    assert meta["base_model"] == "nvidia/Llama-3.1-Nemotron-Nano-8B-v1"
    assert meta["base_model_relation"] == "finetune"
    card = files["README.md"].decode()
    assert "## Lineage" in card and "10k math chats" in card and "llama-nemotron-nano-8b/sft" in card
    assert json.loads(files["zoo.json"])["lineage"]["recipe"] == "llama-nemotron-nano-8b/sft"
    assert hub.repos["model/me/llama-sft"].commits["v1"][-1]["summary"] == "first release"


def test_wrong_token_is_refused(hub: FakeHub, llama) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError):
        push_to_hub(llama, "me/llama-x", token="hf_wrong", check_transformers=False)
    assert hub.repos == {}


def test_failed_validation_uploads_nothing(hub: FakeHub, llama, monkeypatch: pytest.MonkeyPatch) -> None:
    # A model whose in-memory output is not what its files reproduce (state outside the checkpoint).
    handle = llama.register_forward_hook(lambda mod, args, out: type(out)(**{**vars(out), "logits": out.logits + 1}))
    try:
        with pytest.raises(ReleaseValidationError, match="logits differ"):
            push_to_hub(llama, "me/llama-bad", token=TOKEN, check_transformers=False)
    finally:
        handle.remove()
    assert hub.log == [] and hub.repos == {}


def test_incomplete_checkpoint_uploads_nothing(hub: FakeHub, llama, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo import hub as zoo_hub

    real = zoo_hub.hf_state_dict

    def drop_lm_head(module, key_map):
        return ((k, t) for k, t in real(module, key_map) if k != "lm_head.weight")

    monkeypatch.setattr(zoo_hub, "hf_state_dict", drop_lm_head)
    with pytest.raises(ReleaseValidationError, match="zoo.load fails"):
        push_to_hub(llama, "me/llama-broken", token=TOKEN, check_transformers=False)
    assert hub.log == [] and hub.repos == {}


def test_push_folder_reads_lineage_file(hub: FakeHub, llama, tmp_path: Path) -> None:
    ckpt = llama.save_pretrained(tmp_path / "ckpt")
    (ckpt / "lineage.json").write_text(json.dumps({"base_model": "me/parent", "method": "pruning + distillation"}))
    push_folder(ckpt, "me/llama-pruned", token=TOKEN, check_transformers=False)
    card = hub.files("me/llama-pruned")["README.md"].decode()
    assert "base_model: me/parent" in card and "pruning + distillation" in card
    (ckpt / "lineage.json").write_text(json.dumps({"base_model": "me/parent", "teacher": "x"}))
    with pytest.raises(ConfigError, match="teacher"):
        push_folder(ckpt, "me/llama-pruned2", token=TOKEN, check_transformers=False)


def test_zoo_push_cli(hub: FakeHub, llama, tmp_path: Path) -> None:
    """The real command in a fresh process: HF_ENDPOINT and HF_HUB_DISABLE_XET are read from the environment."""
    ckpt = llama.save_pretrained(tmp_path / "ckpt")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "zoo.cli", "push", str(ckpt), "me/cli-release", "--token", TOKEN,
           "--base-model", "nvidia/Llama-3.1-Nemotron-Nano-8B-v1", "--method", "SFT", "--shard-size", str(SHARD),
           "--no-transformers-check"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pushed" in done.stdout
    files = hub.files("me/cli-release")
    assert "model.safetensors.index.json" in files and "README.md" in files


def test_zoo_push_cli_errors(hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.cli import main

    assert main(["push", str(tmp_path / "missing"), "me/x"]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["push", str(tmp_path), "me/x", "--method", "SFT"]) == 2
    assert "need --base-model" in capsys.readouterr().err
    assert hub.log == []


def test_pruned_model_release_records_lineage_and_its_own_shape(tmp_path: Path) -> None:
    """A Minitron-pruned child: the folder holds the child's config, validates in zoo and transformers, and the
    card shows the child's pattern and size with the parent as base_model."""
    from zoo.training.prune import PruneSpec, prune

    parent = zoo.load("nemotron-h-8b-base", tiny=True, seed=0)
    child = prune(parent, PruneSpec(hidden=48, ffn=64, mamba_heads=2, drop_blocks=(1,)))
    child.tokenizer, child.chat_format, child.entry = parent.tokenizer, parent.chat_format, None
    lineage = Lineage("nvidia/Nemotron-H-8B-Base-8K", method="Minitron width + depth pruning",
                      recipe="nemotron-h-8b-base/prune", data="calibration: 1024 samples")
    folder = build_release(child, tmp_path / "pruned", repo_id="me/h-pruned", lineage=lineage, max_shard_size=SHARD)
    report = validate_release(folder, child)
    assert report.transformers_max_abs_diff is not None and report.transformers_max_abs_diff < 1e-4
    config = json.loads((folder / "config.json").read_text())
    assert config["hidden_size"] == 48
    assert config["hybrid_override_pattern"] == parent.config.pattern[:1] + parent.config.pattern[2:]
    meta, body = (folder / "README.md").read_text().split("---\n")[1:3]
    meta = yaml.safe_load(meta)
    assert meta["base_model"] == "nvidia/Nemotron-H-8B-Base-8K" and meta["base_model_relation"] == "finetune"
    assert f"| block pattern | `{config['hybrid_override_pattern']}` |" in body
    assert f"{sum(p.numel() for p in child.parameters()):,}" in body
    assert "| hidden size | 48 |" in body and "Minitron width + depth pruning" in body


def test_nemotron_nas_release_with_tokenizer_validates(tmp_path: Path) -> None:
    model = zoo.load("llama-nemotron-super-49b", tiny=True, seed=0)
    assert model.tokenizer is not None
    folder = build_release(model, tmp_path / "nas", repo_id="me/nas")
    validate_release(folder, model)
    qwen = zoo.load("acereason-nemotron-7b", tiny=True, seed=0)  # its tokenizer must reload as written, too
    validate_release(build_release(qwen, tmp_path / "qwen", repo_id="me/qwen"), qwen)
