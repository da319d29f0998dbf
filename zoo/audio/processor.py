"""The audio-language processor: text with `<|AUDIO|>` placeholders + audio clips -> token ids and log-mel features.

Qwen2-Audio's prompt form per clip is `Audio {k}: <|audio_bos|><|AUDIO|><|audio_eos|>\\n` inside the user turn
(checkpoints.md section 6.1). The processor loads each clip (any file `zoo.audio.io` reads, or an array at 16 kHz),
computes Whisper log-mel features for the encoder's full window, and expands the k-th `<|AUDIO|>` into as many
copies as the clip yields encoder tokens (`audio_token_counts`), so the model can write the encoder output into
exactly those positions.

Feature settings are saved as `preprocessor_config.json` in WhisperFeatureExtractor's schema so transformers'
`Qwen2AudioProcessor` reads the same file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from zoo.audio.features import HOP_LENGTH, N_FFT, SAMPLING_RATE, log_mel
from zoo.audio.io import AudioError, as_waveform
from zoo.audio.whisper import WhisperEncoderConfig, audio_token_counts
from zoo.errors import ConfigError, ZooError

__all__ = ["AUDIO_TOKEN", "AUDIO_BOS", "AUDIO_EOS", "AudioProcessor", "audio_block"]

AUDIO_TOKEN = "<|AUDIO|>"
AUDIO_BOS = "<|audio_bos|>"
AUDIO_EOS = "<|audio_eos|>"
PREPROCESSOR_FILE = "preprocessor_config.json"


def audio_block(k: int) -> str:
    """The text that announces the k-th clip (1-based) in a user turn, as Qwen2-Audio's chat template writes it."""
    return f"Audio {k}: {AUDIO_BOS}{AUDIO_TOKEN}{AUDIO_EOS}\n"


class AudioProcessor:
    """Tokenizer + log-mel front end for an audio-language model.

    Args:
        tokenizer: a tokenizer holding `<|AUDIO|>` as a single token.
        encoder: the audio encoder's config (mel bins and window come from it).
        audio_token: the placeholder string.
    """

    def __init__(self, tokenizer: Any, encoder: WhisperEncoderConfig, audio_token: str = AUDIO_TOKEN) -> None:
        if tokenizer is None:
            raise ConfigError("the audio processor needs a tokenizer (this checkpoint has none)")
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.audio_token = audio_token
        ids = tokenizer.encode(audio_token, add_special_tokens=False)
        if len(ids) != 1:
            raise ConfigError(f"tokenizer does not hold {audio_token!r} as one token (it encodes to {ids})")
        self.audio_token_id = ids[0]
        self.n_samples = encoder.n_frames * HOP_LENGTH  # 3000 frames * 160 = 30 s at 16 kHz

    # -- features -----------------------------------------------------------------------------------------------

    def features(self, audios: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Load clips and compute their features.

        Args:
            audios: paths, 1-D arrays/tensors at 16 kHz, or (samples, rate) tuples.

        Returns:
            input_features (n, n_mels, frames) float32 and feature_attention_mask (n, frames) int64.
        """
        waves = [torch.from_numpy(as_waveform(a, SAMPLING_RATE, name=f"audios[{i}]")) for i, a in enumerate(audios)]
        feats, n_frames = log_mel(
            waves, SAMPLING_RATE, self.encoder.num_mel_bins, n_samples=self.n_samples, return_lengths=True
        )
        mask = (torch.arange(feats.shape[-1])[None, :] < n_frames[:, None]).long()
        return feats, mask

    # -- text + audio -------------------------------------------------------------------------------------------

    def __call__(self, text: str | list[str], audios: list[Any] | None = None) -> dict[str, torch.Tensor]:
        """Tokenize prompts, expanding each `<|AUDIO|>` to its clip's token count.

        Args:
            text: one prompt or a batch; placeholders are matched to `audios` in reading order across the batch.
            audios: one clip per placeholder.

        Returns:
            `input_ids` and `attention_mask` (b, s) int64 (left-padded), and with audio `input_features`
            (n, n_mels, frames) float32 and `feature_attention_mask` (n, frames) int64.
        """
        prompts = [text] if isinstance(text, str) else list(text)
        audios = list(audios or [])
        n_slots = sum(p.count(self.audio_token) for p in prompts)
        if n_slots != len(audios):
            raise AudioError(
                f"the prompt has {n_slots} {self.audio_token} placeholders but {len(audios)} audio clips were given"
            )
        out: dict[str, torch.Tensor] = {}
        counts: list[int] = []
        if audios:
            feats, mask = self.features(audios)
            counts = audio_token_counts(mask.sum(-1)).tolist()
            out["input_features"], out["feature_attention_mask"] = feats, mask
        it = iter(counts)
        pattern = re.compile(re.escape(self.audio_token))
        expanded = [pattern.sub(lambda _: self.audio_token * next(it), p) for p in prompts]
        rows = [self.tokenizer.encode(p, add_special_tokens=False) for p in expanded]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out["input_ids"] = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
        out["attention_mask"] = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        got = int((out["input_ids"] == self.audio_token_id).sum())
        if got != sum(counts):  # e.g. the text itself spelled the placeholder next to a merge-able character
            raise AudioError(f"tokenized prompt has {got} audio positions, the clips need {sum(counts)}")
        return out

    # -- files --------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """preprocessor_config.json contents (WhisperFeatureExtractor schema)."""
        return {
            "feature_extractor_type": "WhisperFeatureExtractor",
            "processor_class": "Qwen2AudioProcessor",
            "feature_size": self.encoder.num_mel_bins,
            "sampling_rate": SAMPLING_RATE,
            "hop_length": HOP_LENGTH,
            "n_fft": N_FFT,
            "chunk_length": self.n_samples // SAMPLING_RATE,
            "n_samples": self.n_samples,
            "nb_max_frames": self.encoder.n_frames,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": True,
            "dither": 0.0,
        }

    def save(self, directory: str | os.PathLike) -> None:
        """Write preprocessor_config.json into `directory` (the caller provides atomicity)."""
        (Path(directory) / PREPROCESSOR_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @staticmethod
    def check_file(directory: str | os.PathLike, encoder: WhisperEncoderConfig) -> None:
        """Fail early when a checkpoint's preprocessor_config.json disagrees with the front end we implement."""
        path = Path(directory) / PREPROCESSOR_FILE
        if not path.exists():
            return
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: invalid JSON ({e.msg})") from None
        expected = {"feature_size": encoder.num_mel_bins, "sampling_rate": SAMPLING_RATE, "hop_length": HOP_LENGTH,
                    "n_fft": N_FFT}  # fmt: skip
        for key, want in expected.items():
            if key in cfg and cfg[key] != want:
                raise ConfigError(f"{path}: {key} is {cfg[key]}, the model's front end needs {want}")
        if cfg.get("dither", 0.0):
            raise ZooError(f"{path}: dither is not supported (features would not be deterministic)")
