"""Forward and loss of a packed multimodal batch (the `loss_fn` handed to `zoo.training.loop.fit`).

Media features are written into their placeholder rows in reading order (row 0 first), exactly as the models'
own forwards do, then the backbone runs on `inputs_embeds` with `document_ids`, so attention is block-diagonal per
sample and the Mamba state restarts at every sample.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import ZooError
from zoo.language.model import ModelOutput
from zoo.training.data import IGNORE_INDEX
from zoo.training.loop import LossOut
from zoo.training.multimodal.audio_encode import encode_cropped
from zoo.training.multimodal.packing import unpack_media

__all__ = ["mm_forward", "mm_loss"]


def embed_batch(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Token embeddings with media features merged: (rows, l, hidden)."""
    ids = batch["input_ids"]
    if hasattr(model, "image_features"):  # Eagle: SigLIP tiles -> <IMG_CONTEXT> rows
        return model.embed(ids, unpack_media(batch, "pixel_values"))
    x = model.language_model.embed_tokens(ids)
    if hasattr(model, "audio_tower") and "input_features" in batch:
        feats, lengths = unpack_media(batch, "input_features"), unpack_media(batch, "feature_lengths")
        audio = encode_cropped(model, feats, lengths).to(x.dtype)
        slots = ids == model.config.audio_token_id
        if int(slots.sum()) != audio.shape[0]:
            raise ZooError(f"batch has {int(slots.sum())} audio positions, the clips give {audio.shape[0]} tokens")
        x = x.masked_scatter(slots[..., None], audio)
    return x


def mm_forward(model: nn.Module, batch: dict[str, Tensor]) -> ModelOutput:
    """Packed forward: (rows, l) ids + row-padded media -> the backbone's ModelOutput."""
    if not hasattr(model, "language_model"):  # a plain language model: nothing to merge
        return model(batch["input_ids"], document_ids=batch["document_ids"])
    return model.language_model(inputs_embeds=embed_batch(model, batch), document_ids=batch["document_ids"])


def mm_loss(model: nn.Module, batch: dict[str, Tensor]) -> LossOut:
    """Summed next-token CE over assistant tokens (labels pre-shifted, IGNORE_INDEX elsewhere)."""
    logits = mm_forward(model, batch).logits
    labels = batch["labels"]
    loss_sum = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return LossOut(loss_sum, int((labels != IGNORE_INDEX).sum()))
