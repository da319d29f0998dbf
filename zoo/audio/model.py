"""The audio-language model: a Whisper-style encoder whose projected tokens fill `<|AUDIO|>` positions of the
shared `LanguageModel`.

Paper: Qwen2-Audio (Chu et al., 2024, arXiv 2407.10759); checkpoint layout in reference/checkpoints.md section 6.1.
Registered for `model_type` "qwen2_audio". The same class serves:

* Qwen2-Audio-7B(-Instruct) as released: `text_config` is Qwen2, keys `audio_tower.*`, `multi_modal_projector.*`,
  `language_model.model.*`, `language_model.lm_head.weight`; transformers and vLLM load what we write;
* `nano-audio-tiny`: the same encoder and projector on a hybrid Nemotron-H backbone (`text_config.model_type`
  "nemotron_h", keys `language_model.backbone.*`). No upstream class implements this pairing, so only the zoo loads
  it; the file layout follows the same rules.

    features (n, m, f) --audio_tower--> (n, T, d_audio) --projector--> (n, T, hidden)
    input_ids (b, s) --embed--> (b, s, hidden); row-major `<|AUDIO|>` positions <- the valid audio tokens
    --> LanguageModel(inputs_embeds=...) --> logits (b, s, vocab)

Design choices:
* The processor (`zoo.audio.processor`) expands each placeholder to the clip's token count, so merging is a masked
  scatter in reading order with a count check (the same contract as transformers' non-legacy path).
* Audio is prefill-only: decode steps pass ids and the cache, never features.
* Qwen2-Audio's config.json leaves most `text_config` fields to Qwen2Config defaults; we fill exactly those
  defaults (listed below) before building, and write the resolved values back on save.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.audio.processor import AUDIO_BOS, AUDIO_EOS, AUDIO_TOKEN, AudioProcessor, audio_block
from zoo.audio.whisper import (
    ENCODER_KEYS,
    PROJECTOR_KEYS,
    AudioProjector,
    WhisperEncoder,
    WhisperEncoderConfig,
    audio_token_counts,
)
from zoo.errors import ConfigError, ZooError
from zoo.language.checkpoint import KeyMap, language_model_key_map
from zoo.language.config import LMConfig
from zoo.language.model import LanguageModel, ModelOutput
from zoo.modeling import ZooModel

__all__ = ["AudioLMConfig", "AudioLanguageModel", "QWEN2_TEXT_DEFAULTS"]

QWEN2_TEXT_DEFAULTS: dict[str, Any] = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 4096,
    "intermediate_size": 22016,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
"""transformers' Qwen2Config defaults: the values a Qwen2-Audio `text_config` inherits for fields it omits."""

_USER_TURN_MARKERS = ("<|im_start|>user\n",)  # where audio blocks go when a rendered prompt has none


@dataclass(frozen=True)
class AudioLMConfig:
    """An audio tower, its projector and a language backbone.

    Attributes:
        audio: the encoder (`audio_config`).
        text: the language backbone (`text_config`).
        audio_token_id: id of `<|AUDIO|>` (`audio_token_index`).
    """

    audio: WhisperEncoderConfig
    text: LMConfig
    audio_token_id: int

    def __post_init__(self) -> None:
        if not 0 <= self.audio_token_id < self.text.vocab_size:
            raise ConfigError(
                f"config.json: audio_token_index {self.audio_token_id} is outside the vocabulary "
                f"(text_config.vocab_size {self.text.vocab_size})"
            )

    @property
    def vocab_size(self) -> int:
        """The language model's vocabulary (logits width), as on `LMConfig`."""
        return self.text.vocab_size

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> AudioLMConfig:
        """From a `qwen2_audio` config.json dict (missing Qwen2 text fields take Qwen2Config's defaults)."""
        if hf.get("model_type") != "qwen2_audio":
            raise ConfigError(f"config.json: model_type must be 'qwen2_audio', got {hf.get('model_type')!r}")
        text = dict(hf.get("text_config") or {})
        if text.get("model_type", "qwen2") == "qwen2":
            text = {
                **QWEN2_TEXT_DEFAULTS,
                **{k: v for k, v in text.items() if v is not None or k not in QWEN2_TEXT_DEFAULTS},
            }
        token = hf.get("audio_token_index", hf.get("audio_token_id", 151646))
        return cls(WhisperEncoderConfig.from_hf(hf.get("audio_config") or {}), LMConfig.from_hf(text), int(token))


class AudioLanguageModel(nn.Module, ZooModel):
    """Audio encoder + projector + shared LanguageModel (see module docstring).

    Shapes: b batch, s sequence, n clips, m mel bins, f mel frames, T audio tokens per clip, d hidden.
    """

    def __init__(self, config: AudioLMConfig, hf_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.hf_config = copy.deepcopy(hf_config) if hf_config is not None else {}
        self.audio_tower = WhisperEncoder(config.audio)
        self.projector = AudioProjector(config.audio.d_model, config.text.hidden_size)
        self.language_model = LanguageModel(config.text)
        self.processor: AudioProcessor | None = None

    @property
    def chat_format(self) -> str:
        """ChatML unless set otherwise: Qwen2-Audio's template is ChatML, so a checkpoint without template or zoo.json
        (e.g. written by transformers) still chats in the right format."""
        return self.__dict__.get("_chat_format") or "chatml"

    @chat_format.setter
    def chat_format(self, value: str | None) -> None:
        self.__dict__["_chat_format"] = value

    # -- ZooModel protocol --------------------------------------------------------------------------------------

    @classmethod
    def from_hf_config(cls, hf_config: dict[str, Any]) -> AudioLanguageModel:
        """Build (uninitialised or on `meta`) from config.json contents."""
        return cls(AudioLMConfig.from_hf(hf_config), hf_config)

    def hf_key_map(self) -> KeyMap:
        """Ours <-> upstream: `audio_tower.*` (same names), `projector.*` <-> `multi_modal_projector.*`,
        `language_model.*` <-> `language_model.` + the backbone family's own key map."""
        km = KeyMap()
        for ours, hf in ENCODER_KEYS.items():
            layers = range(self.config.audio.encoder_layers) if "{}" in ours else [None]
            for i in layers:
                km.add("audio_tower." + ours.format(i), "audio_tower." + hf.format(i))
        for ours, hf in PROJECTOR_KEYS.items():
            km.add("projector." + ours, "multi_modal_projector." + hf)
        lm = language_model_key_map(self.config.text).prefixed("language_model.", "language_model.")
        km = km + lm
        # The sinusoid/learned position table is a frozen parameter, kept in the file (upstream stores it).
        return km

    @torch.no_grad()
    def init_weights(self) -> None:
        """Random init of all three parts (for `tiny=True` and training from scratch)."""
        std = self.config.text.initializer_range
        self.audio_tower.init_weights(std)
        self.projector.init_weights(std)
        self.language_model.init_weights()

    def export_hf_config(self) -> dict[str, Any]:
        """config.json to write: the source file's fields, with the resolved audio and text configs."""
        out = copy.deepcopy(self.hf_config)
        text = {k: v for k, v in self.config.text.to_hf().items() if k not in ("architectures", "torch_dtype")}
        out["text_config"] = {**(out.get("text_config") or {}), **text}
        out["audio_config"] = {**(out.get("audio_config") or {}), **self.config.audio.to_hf()}
        out.update(model_type="qwen2_audio", audio_token_index=self.config.audio_token_id)
        out.setdefault("architectures", ["Qwen2AudioForConditionalGeneration"])
        return out

    def new_cache(self, batch_size: int):
        """Empty decode cache of the language backbone."""
        return self.language_model.new_cache(batch_size)

    # -- processor hooks used by zoo.load / save_pretrained -----------------------------------------------------

    def load_processor(self, path: Path) -> None:
        """Build the processor from the loaded tokenizer (after checking preprocessor_config.json)."""
        AudioProcessor.check_file(path, self.config.audio)
        self.processor = AudioProcessor(self.tokenizer, self.config.audio) if self.tokenizer is not None else None

    def tiny_processor(self) -> None:
        """Tiny models: give the chat tokenizer the three audio tokens, which must land on `audio_token_index`."""
        if self.tokenizer is None:
            return
        tok = copy.deepcopy(self.tokenizer)  # zoo.tokenizers caches and shares its tokenizers
        tok.add_special_tokens({"additional_special_tokens": [AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS]})
        got = tok.convert_tokens_to_ids(AUDIO_TOKEN)
        if got != self.config.audio_token_id or len(tok) > self.config.text.vocab_size:
            raise ConfigError(
                f"tiny tokenizer puts {AUDIO_TOKEN} at id {got} with {len(tok)} tokens; the tiny config needs "
                f"audio_token_index {self.config.audio_token_id} and vocab_size >= {len(tok)}"
            )
        self.tokenizer = tok
        self.processor = AudioProcessor(tok, self.config.audio)

    def save_processor(self, directory: Path) -> None:
        """Write preprocessor_config.json next to the weights."""
        if self.tokenizer is not None:
            AudioProcessor(self.tokenizer, self.config.audio).save(directory)

    # -- forward ------------------------------------------------------------------------------------------------

    def encode_audio(self, input_features: Tensor, feature_attention_mask: Tensor | None = None) -> Tensor:
        """Encode and project clips, keeping each clip's valid tokens.

        Args:
            input_features: (n, m, f) log-mel features of full windows.
            feature_attention_mask: (n, f) 1 for real frames (None: all real).

        Returns:
            (sum of valid tokens over clips, hidden), clips in order.
        """
        frames = (
            feature_attention_mask.sum(-1)
            if feature_attention_mask is not None
            else torch.full((input_features.shape[0],), input_features.shape[-1], device=input_features.device)
        )
        tokens = self.projector(self.audio_tower(input_features, frames))  # (n, T, hidden)
        counts = audio_token_counts(frames).to(tokens.device)
        keep = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < counts[:, None]  # (n, T)
        return tokens[keep]

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        cache: Any = None,
        *,
        input_features: Tensor | None = None,
        feature_attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        document_ids: Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> ModelOutput:
        """Run the model; audio features (prefill only) fill the `<|AUDIO|>` positions of `input_ids`.

        Args:
            input_ids: (b, s) token ids with one `<|AUDIO|>` per valid audio token (see the processor).
            attention_mask: (b, s) 0/1, left padding only.
            cache: a `HybridCache` from `new_cache`, advanced in place.
            input_features: (n, m, f) features of the n clips, in the order their placeholders appear.
            feature_attention_mask: (n, f) valid mel frames.
            inputs_embeds: (b, s, d) instead of `input_ids` (no audio merge then).
            document_ids: (b, s) packed-sample ids (no cache).
            logits_to_keep: logits for the last n positions only (0 = all).

        Returns:
            The backbone's `ModelOutput` (logits (b, s or n, vocab), cache, hidden_states).
        """
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = self.language_model.embed_tokens(input_ids)
            slots = input_ids == self.config.audio_token_id  # (b, s)
            if input_features is not None:
                audio = self.encode_audio(input_features, feature_attention_mask).to(inputs_embeds.dtype)
                n_slots = int(slots.sum())
                if n_slots != audio.shape[0]:
                    raise ZooError(
                        f"the prompt has {n_slots} {AUDIO_TOKEN} positions but the audio gives {audio.shape[0]} "
                        "tokens; build inputs with the model's processor (it expands each placeholder)"
                    )
                inputs_embeds = inputs_embeds.masked_scatter(slots[..., None], audio)
            elif bool(slots.any()) and (cache is None or cache.seq_len == 0):
                raise ZooError(f"the prompt has {AUDIO_TOKEN} positions but no input_features were given")
        elif input_features is not None:
            raise ValueError("input_features need input_ids (to find the audio positions), not inputs_embeds")
        return self.language_model(
            attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=inputs_embeds,
            document_ids=document_ids,
            logits_to_keep=logits_to_keep,
        )

    # -- chat -----------------------------------------------------------------------------------------------------

    def _processor(self) -> AudioProcessor:
        if self.processor is None:
            raise ZooError("this model has no tokenizer/processor (load a checkpoint with tokenizer files)")
        return self.processor

    def prepare_chat_inputs(
        self, prompt: str, images: list | None = None, videos: list | None = None, audios: list | None = None
    ) -> dict[str, Tensor]:
        """Model inputs for a rendered chat prompt and its clips (called by `zoo.chat.chat`).

        When the prompt holds no `<|AUDIO|>` placeholder, one `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\\n`
        block per clip is inserted at the start of the last user turn (the chat template's layout).

        Args:
            prompt: the rendered prompt text.
            images: not supported (audio model).
            videos: not supported (audio model).
            audios: paths, 16 kHz arrays or (samples, rate) tuples.

        Returns:
            `input_ids`, `attention_mask` (1, s) and, with audio, `input_features`, `feature_attention_mask`.
        """
        if images or videos:
            raise ZooError(f"{type(self).__name__} takes audio only; got images or videos")
        audios = list(audios or [])
        if audios and AUDIO_TOKEN not in prompt:
            blocks = "".join(audio_block(k + 1) for k in range(len(audios)))
            at = max(prompt.rfind(m) + len(m) if m in prompt else -1 for m in _USER_TURN_MARKERS)
            prompt = prompt[:at] + blocks + prompt[at:] if at >= 0 else blocks + prompt
        inputs = self._processor()(prompt, audios)
        device = self.language_model.embed.weight.device
        return {k: v.to(device) for k, v in inputs.items()}

    @torch.no_grad()
    def option_logprobs(self, prompt: str, audios: list, continuations: list[str]) -> list[float]:
        """Mean log-probability per token of each continuation after a rendered prompt (likelihood scoring).

        Args:
            prompt: rendered prompt text ending where the answer starts (e.g. after the assistant header).
            audios: the prompt's clips.
            continuations: candidate answer texts.

        Returns:
            One length-normalised log-probability per continuation.
        """
        base = self.prepare_chat_inputs(prompt, audios=audios)
        tok = self._processor().tokenizer
        ctx = base["input_ids"][0].tolist()
        conts = [tok.encode(c, add_special_tokens=False) for c in continuations]
        if any(len(c) == 0 for c in conts):
            raise ZooError("option_logprobs: an empty continuation cannot be scored")
        rows = [ctx + c for c in conts]
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = base["input_ids"].device
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        extra = {}
        if "input_features" in base:  # every row holds the same clips, in the same order
            extra = {
                "input_features": base["input_features"].repeat(len(rows), 1, 1),
                "feature_attention_mask": base["feature_attention_mask"].repeat(len(rows), 1),
            }
        logits = self(ids, mask, **extra).logits.float()  # (r, width, vocab)
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        out = []
        for i, c in enumerate(conts):
            targets = torch.tensor(c, device=device)
            pred = logp[i, width - 1 - len(c) : width - 1]  # positions that predict the continuation tokens
            out.append(float(pred.gather(-1, targets[:, None]).mean()))
        return out
