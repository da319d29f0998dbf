"""One rendered multimodal training sample and its assistant-only targets.

A sample is what a processor produced for one conversation: token ids with the media placeholders already
expanded, and the media tensors those placeholders stand for. The loss mask marks the assistant spans only
(from after `<|im_start|>assistant\\n` through `<|im_end|>`, Eagle 2.5 / Qwen2-Audio SFT convention), so the
model never learns to predict the user's text or the image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from zoo.training.data import IGNORE_INDEX

__all__ = ["MMSample", "assistant_mask", "shifted_labels"]


@dataclass
class MMSample:
    """A processor-rendered sample.

    Attributes:
        input_ids: (l,) int64 token ids, placeholders expanded.
        loss_mask: (l,) bool, True on tokens the model learns to produce (assistant replies).
        media: Model inputs besides ids, per sample: `pixel_values` (tiles, 3, s, s) for vision models;
            `input_features` (clips, mels, frames) and `feature_lengths` (clips,) for audio models.
        meta: Free-form facts (task, answer, degradation applied) for statistics and evaluation.
    """

    input_ids: Tensor
    loss_mask: Tensor
    media: dict[str, Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def assistant_mask(ids: Tensor, start_id: int, role_ids: list[int], end_id: int) -> Tensor:
    """Mark the assistant replies of a ChatML token sequence.

    Args:
        ids: (l,) token ids.
        start_id: Id of `<|im_start|>`.
        role_ids: Ids of "assistant\\n" (as the tokenizer splits it after a special token).
        end_id: Id of `<|im_end|>` (learned: it is how the model stops).

    Returns:
        (l,) bool, True from the first reply token through its `<|im_end|>`.
    """
    seq = ids.tolist()
    mask = [False] * len(seq)
    k = len(role_ids)
    i = 0
    while i < len(seq):
        if seq[i] == start_id and seq[i + 1 : i + 1 + k] == role_ids:
            j = i + 1 + k
            while j < len(seq):
                mask[j] = True
                if seq[j] == end_id:
                    break
                j += 1
            i = j
        i += 1
    return torch.tensor(mask, dtype=torch.bool)


def shifted_labels(ids: Tensor, loss_mask: Tensor) -> Tensor:
    """Pre-shifted targets: labels[t] = ids[t + 1] where token t + 1 is learned, else IGNORE_INDEX. (l,) -> (l,).

    Shifting inside the sample (not after packing) means no position ever targets the next sample's first token.
    """
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:-1] = torch.where(loss_mask[1:], ids[1:], torch.full_like(ids[1:], IGNORE_INDEX))
    return labels
