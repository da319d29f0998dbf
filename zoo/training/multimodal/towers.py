"""Which parts of a multimodal model train in a stage.

Parts by name: `vision` (SigLIP tower, `vision_model`), `audio` (Whisper encoder, `audio_tower`), `projector`
(`mlp1` or `projector`), `language` (the backbone, `language_model`). Frozen parts get `requires_grad=False`, so
the optimizer built afterwards holds only trainable parameters and frozen towers cost no optimizer memory.
Parameters frozen by design (Whisper's position table) stay frozen whatever the stage says.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["PARTS", "set_trainable"]

PARTS: dict[str, tuple[str, ...]] = {
    "vision": ("vision_model",),
    "audio": ("audio_tower",),
    "projector": ("mlp1", "projector"),
    "language": ("language_model",),
}


def set_trainable(model: nn.Module, parts: Sequence[str]) -> dict[str, int]:
    """Freeze every part not in `parts`, unfreeze those in it.

    Args:
        model: An Eagle or audio-language model (or a plain backbone: only `language` applies).
        parts: Part names from `PARTS`.

    Returns:
        Trainable parameter count per part present in the model.

    Raises:
        ValueError: an unknown part name, or a named part the model does not have.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown trainable part(s) {sorted(unknown)}; known: {sorted(PARTS)}")
    children = dict(model.named_children())
    out: dict[str, int] = {}
    for part, names in PARTS.items():
        mods = [children[n] for n in names if n in children]
        if not mods:
            if part in parts:
                raise ValueError(f"{type(model).__name__} has no {part} part ({'/'.join(names)})")
            continue
        for m in mods:
            for name, p in m.named_parameters():
                p.requires_grad_(part in parts and not name.startswith("embed_positions"))
        out[part] = sum(p.numel() for m in mods for p in m.parameters() if p.requires_grad)
    return out
