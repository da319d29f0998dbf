"""Conversations + media -> `MMSample`s through the models' own processors, fitted to the stage length.

Vision samples go through `EagleProcessor` with `max_len` = the stage length, i.e. Automatic Degrade Sampling:
the text is never truncated, video frames are reduced first, image tiles second, and a sample whose text plus
minimal visuals cannot fit is dropped and counted. A final length check drops (and counts) anything still longer
than the stage length (e.g. pre-decoded frames, which the processor does not subsample), so no sample ever exceeds
it. Audio samples have no degradable visual part: a sample longer than the stage length is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image

from zoo.audio.processor import audio_block
from zoo.chat import build_prompt
from zoo.errors import ZooError
from zoo.training.multimodal.audio_encode import cropped_features
from zoo.training.multimodal.sample import MMSample, assistant_mask
from zoo.vision.processor import Video, tile_count
from zoo.vision.sampling import SampleRejected, plan_frames
from zoo.vision.video import open_video

__all__ = ["AudioRenderer", "FitStats", "VisionRenderer", "check_drops"]

USER_HEADER = "<|im_start|>user\n"
MAX_CONSECUTIVE_DROPS = 500
"""A stream that drops this many samples in a row cannot fill a batch: the stage length is too small for the data."""


@dataclass
class FitStats:
    """What fitting to the stage length did to the stream (written next to each stage's metrics).

    Attributes:
        seen: Samples rendered.
        kept: Samples that fit (possibly degraded).
        degraded: Kept samples whose frames or tiles ADS reduced.
        dropped_ads: Samples ADS rejected (text plus minimal visuals over the budget).
        dropped_length: Samples still over the stage length after rendering.
    """

    seen: int = 0
    kept: int = 0
    degraded: int = 0
    dropped_ads: int = 0
    dropped_length: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_drops(streak: int, max_len: int) -> int:
    """Count a dropped sample in a row of drops; raise when a stream cannot produce anything at this length."""
    if streak + 1 >= MAX_CONSECUTIVE_DROPS:
        raise ZooError(f"{streak + 1} samples in a row do not fit max_len={max_len}: raise the stage length")
    return streak + 1


def _chatml_ids(tokenizer: Any) -> tuple[int, list[int], int]:
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    role = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)[1:]
    return start, role, end


class VisionRenderer:
    """Eagle conversations -> samples, ADS-fitted to `max_len`.

    Args:
        processor: The model's `EagleProcessor`.
        max_len: Stage length (ADS budget and hard cap).
    """

    def __init__(self, processor: Any, max_len: int) -> None:
        self.processor, self.max_len = processor, max_len
        self.stats = FitStats()
        self._ids = _chatml_ids(processor.tokenizer)

    def _full_tiles(self, images: Sequence[Any], videos: Sequence[Any]) -> int:
        cfg = self.processor.config
        n = 0
        for im in images:
            w, h = im.size if isinstance(im, Image.Image) else Image.open(im).size
            n += tile_count(cfg, w, h)
        for v in videos:
            v = v if isinstance(v, Video) else Video(path=str(v))
            if v.frames is not None:
                n += len(v.frames) * cfg.video_max_tiles
                continue
            reader = open_video(v.path)  # header only: the frame count the processor plans without a budget
            info = reader.info
            reader.close()
            plan = plan_frames(info.num_frames, info.fps, target_fps=cfg.video_fps, min_frames=cfg.video_min_frames,
                               max_frames=cfg.video_max_frames, frame_factor=cfg.frame_factor, start=v.start,
                               end=v.end)
            n += len(plan.indices) * cfg.video_max_tiles
        return n

    def __call__(self, messages: list[dict[str, str]], images: Sequence[Any] = (), videos: Sequence[Any] = (),
                 meta: dict[str, Any] | None = None) -> MMSample | None:
        """Render one conversation (with assistant turns); None when it was dropped (counted in `stats`)."""
        self.stats.seen += 1
        try:
            out = self.processor(messages, list(images), list(videos), add_generation_prompt=False,
                                 max_len=self.max_len)
        except SampleRejected:
            self.stats.dropped_ads += 1
            return None
        ids = out["input_ids"][0]
        if ids.shape[0] > self.max_len:
            self.stats.dropped_length += 1
            return None
        media = {"pixel_values": out["pixel_values"]} if "pixel_values" in out else {}
        got = int(media["pixel_values"].shape[0]) if media else 0
        if got < self._full_tiles(images, videos):
            self.stats.degraded += 1
        self.stats.kept += 1
        return MMSample(ids, assistant_mask(ids, *self._ids), media, dict(meta or {}))


class AudioRenderer:
    """Audio conversations (one user turn, one reply) -> samples rendered as `model.chat` renders prompts.

    The prompt is `zoo.chat.build_prompt(model, question)` with one `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>`
    block per clip at the start of the user turn (the model's `prepare_chat_inputs` layout), so training sees
    exactly what the AQA harness scores; the reply and `<|im_end|>` are learned.

    Args:
        model: An `AudioLanguageModel` with its processor.
        max_len: Stage length.
    """

    def __init__(self, model: Any, max_len: int) -> None:
        self.model, self.max_len = model, max_len
        self.tokenizer = model.processor.tokenizer
        self.audio_token = model.processor.audio_token
        self.n_mels = model.config.audio.num_mel_bins
        self.stats = FitStats()
        self._ids = _chatml_ids(self.tokenizer)

    def __call__(self, question: str, reply: str, clips: Sequence[torch.Tensor],
                 meta: dict[str, Any] | None = None) -> MMSample | None:
        """Render; None when the sample is longer than the stage length (counted in `stats`)."""
        from zoo.audio.whisper import audio_token_counts

        self.stats.seen += 1
        prompt = build_prompt(self.model, question)
        at = prompt.rfind(USER_HEADER)
        at = at + len(USER_HEADER) if at >= 0 else 0
        blocks = "".join(audio_block(k + 1) for k in range(len(clips)))
        text = prompt[:at] + blocks + prompt[at:] + reply + "<|im_end|>\n"
        feats, lengths = cropped_features(list(clips), self.n_mels)
        counts = iter(audio_token_counts(lengths).tolist())
        parts = text.split(self.audio_token)
        expanded = parts[0] + "".join(self.audio_token * next(counts) + p for p in parts[1:])
        ids = torch.tensor(self.tokenizer.encode(expanded, add_special_tokens=False), dtype=torch.long)
        if ids.shape[0] > self.max_len:
            self.stats.dropped_length += 1
            return None
        self.stats.kept += 1
        media = {"input_features": feats, "feature_lengths": lengths}
        return MMSample(ids, assistant_mask(ids, *self._ids), media, dict(meta or {}))
