"""Checkpoint files: resolve a name or path, download from the Hub, read safetensors lazily, write HF layout.

Reading is lazy and tensor by tensor (safetensors memory-maps the file), converting dtype on the way, so peak
memory while loading stays near one copy of the weights. Writing goes to a temporary directory next to the target,
which is renamed into place at the end: a crash never leaves a half-written checkpoint. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from zoo.errors import CheckpointError, ConfigError, OfflineError
from zoo.language.checkpoint import KeyMap

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# files a snapshot download needs (weights, configs, tokenizer, processor, chat template)
HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt", "*.py"]

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1}


# ---------------------------------------------------------------------- reading
def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file, raising ConfigError that names the file on a missing file or bad JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _check_safetensors_file(path: Path) -> dict[str, Any]:
    """Validate the header and the file length of a safetensors file (catches truncation before reading)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100_000_000:
            raise CheckpointError(f"{path}: corrupt safetensors header (header length {n}, file {size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path}: corrupt safetensors header (not valid JSON)") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, header needs {8 + n + end})")
    for k, v in header.items():
        if k == "__metadata__":
            continue
        numel = 1
        for d in v["shape"]:
            numel *= d
        start, stop = v["data_offsets"]
        if v["dtype"] in _DTYPE_BYTES and stop - start != numel * _DTYPE_BYTES[v["dtype"]]:
            raise CheckpointError(f"{path}: tensor {k!r} has {stop - start} bytes for shape {v['shape']}")
    return header


class SafetensorsReader:
    """Lazy access to the tensors of a checkpoint directory (single file or sharded with an index)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        index = self.dir / INDEX_NAME
        self.key_to_file: dict[str, Path] = {}
        if index.exists():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index}: missing 'weight_map'")
            files = {f: self.dir / f for f in set(weight_map.values())}
            for f, p in files.items():
                if not p.exists():
                    raise CheckpointError(f"{index}: shard {f} listed in the index is missing")
            self.key_to_file = {k: files[f] for k, f in weight_map.items()}
        else:
            shards = sorted(self.dir.glob("*.safetensors"))
            if not shards:
                raise CheckpointError(f"{self.dir}: no *.safetensors weights (and no {INDEX_NAME})")
            for p in shards:
                for k in _check_safetensors_file(p):
                    if k != "__metadata__":
                        self.key_to_file[k] = p
        self._headers: dict[Path, dict] = {}
        self._handles: dict[Path, Any] = {}

    def keys(self) -> list[str]:
        return list(self.key_to_file)

    def _header(self, path: Path) -> dict:
        if path not in self._headers:
            self._headers[path] = _check_safetensors_file(path)
        return self._headers[path]

    def shape(self, key: str) -> tuple[int, ...]:
        entry = self._header(self.key_to_file[key]).get(key)
        if entry is None:
            raise CheckpointError(f"{self.key_to_file[key]}: tensor {key!r} listed in the index is not in the file")
        return tuple(entry["shape"])

    def get(self, key: str) -> torch.Tensor:
        path = self.key_to_file[key]
        self._header(path)
        if path not in self._handles:
            try:
                self._handles[path] = safe_open(str(path), framework="pt")
            except Exception as e:  # safetensors raises its own error types
                raise CheckpointError(f"{path}: cannot open safetensors file ({e})") from None
        try:
            return self._handles[path].get_tensor(key)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read tensor {key!r} ({e})") from None

    def close(self) -> None:
        self._handles.clear()


@torch.no_grad()
def load_weights(module: nn.Module, key_map: KeyMap, reader: SafetensorsReader) -> None:
    """Copy every tensor of `reader` into `module` through `key_map`; strict in both directions.

    The module's parameters must already be allocated (e.g. `to_empty`) in the target dtype/device.
    """
    params = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers())
    available = set(reader.keys())
    missing = [k for k in key_map.hf_keys() if k not in available]
    used = set(key_map.hf_keys())
    unexpected = sorted(k for k in available if k not in used and not key_map.is_ignored(k))
    if missing or unexpected:
        msg = [f"{reader.dir}: checkpoint keys do not match the model"]
        if missing:
            msg.append(f"missing keys ({len(missing)}): {', '.join(missing[:20])}" + (" ..." if len(missing) > 20
                                                                                        else ""))
        if unexpected:
            msg.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}" +
                       (" ..." if len(unexpected) > 20 else ""))
        raise CheckpointError("; ".join(msg))
    for rule in _progress(key_map.rules, reader):
        target = params.get(rule.ours)
        if target is None:
            raise CheckpointError(f"key map names {rule.ours!r}, which the model does not have")
        expected_parts = _split_shapes(tuple(target.shape), rule)
        for hf_key, exp in zip(rule.hf, expected_parts):
            found = reader.shape(hf_key)
            if found != exp:
                raise CheckpointError(f"{reader.key_to_file[hf_key]}: shape mismatch for {hf_key!r}: expected "
                                      f"{list(exp)}, found {list(found)}")
        if len(rule.hf) == 1:
            target.copy_(reader.get(rule.hf[0]).to(target.dtype))
        else:
            offset = 0
            for hf_key, size in zip(rule.hf, rule.sizes):
                target.narrow(rule.dim, offset, size).copy_(reader.get(hf_key).to(target.dtype))
                offset += size


def _progress(rules: list, reader: SafetensorsReader):
    """A progress bar over the tensors, for checkpoints large enough to take a while (> 200 MB)."""
    size = sum(p.stat().st_size for p in set(reader.key_to_file.values()))
    if size < 200 * 1024**2:
        return rules
    from tqdm.auto import tqdm

    return tqdm(rules, desc=f"loading {reader.dir.name}", unit="tensor", leave=False)


def _split_shapes(shape: tuple[int, ...], rule) -> list[tuple[int, ...]]:
    if len(rule.hf) == 1:
        return [shape]
    if sum(rule.sizes) != shape[rule.dim]:
        raise CheckpointError(f"{rule.ours}: split sizes {rule.sizes} do not add up to dim {rule.dim} of {shape}")
    return [shape[: rule.dim] + (s,) + shape[rule.dim + 1:] for s in rule.sizes]


# ---------------------------------------------------------------------- writing
def hf_state_dict(module: nn.Module, key_map: KeyMap) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (upstream key, tensor) pairs for `module`, splitting fused tensors."""
    params = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers())
    for rule in key_map.rules:
        t = params[rule.ours].detach()
        if len(rule.hf) == 1:
            yield rule.hf[0], t
        else:
            yield from zip(rule.hf, t.split(list(rule.sizes), dim=rule.dim))


def write_safetensors(tensors: Iterator[tuple[str, torch.Tensor]], out_dir: Path, *,
                      max_shard_bytes: int = 5 * 1024**3, dtype: torch.dtype | None = None) -> None:
    """Write tensors as `model.safetensors`, or as numbered shards plus an index when over `max_shard_bytes`."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    total = 0
    for key, t in tensors:
        t = t.to(dtype) if dtype is not None and t.is_floating_point() else t
        t = t.contiguous().cpu()
        nbytes = t.numel() * t.element_size()
        if sizes[-1] and sizes[-1] + nbytes > max_shard_bytes:
            shards.append({})
            sizes.append(0)
        shards[-1][key] = t.clone() if t.untyped_storage().nbytes() != nbytes else t  # views would save the base
        sizes[-1] += nbytes
        total += nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(out_dir / SINGLE_NAME), metadata=meta)
        return
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out_dir / name), metadata=meta)
        weight_map.update({k: name for k in shard})
    with open(out_dir / INDEX_NAME, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


class AtomicDirectory:
    """Context manager: yields a temp dir beside `target`; on success it replaces `target`, on error it vanishes."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.tmp-", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, allow_nan=True)
        f.write("\n")


# ---------------------------------------------------------------------- hub
def download(repo_id: str, revision: str | None = None, *, name: str | None = None) -> Path:
    """Snapshot the files a model needs into the HF cache (honours HF_HOME / HF_HUB_OFFLINE); return the dir."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    try:
        path = snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS, local_files_only=offline)
    except LocalEntryNotFoundError:
        raise OfflineError(_offline_message(repo_id, name)) from None
    except Exception as e:  # connection errors come in many types across huggingface_hub versions
        if "offline" in type(e).__name__.lower() or "connect" in str(e).lower() or "resolve" in str(e).lower():
            try:
                path = snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS,
                                         local_files_only=True)
            except Exception:
                raise OfflineError(_offline_message(repo_id, name)) from None
        else:
            raise
    return Path(path)


def _offline_message(repo_id: str, name: str | None) -> str:
    label = name or repo_id
    return (f"weights for {label!r} ({repo_id}) are not in the Hugging Face cache and the hub cannot be reached; "
            f"pass a local checkpoint directory to zoo.load, or use zoo.load({label!r}, tiny=True) for a random "
            "tiny model")
