"""Tokenizers for tests and locally trained models: byte-level BPE holding each chat format's real special tokens.

Real checkpoints bring their own `tokenizer.json`; this module builds *small* tokenizers that behave like them
where it matters for chat: the turn markers are single (atomic) tokens, the end-of-turn token is the eos, and
`save_pretrained` writes files that `transformers.AutoTokenizer.from_pretrained` reloads.

Which strings are atomic follows the released tokenizers:

* `nemotron-v2` (Nano-9B/12B-v2, Mistral-NeMo "Tekken" vocabulary): `<unk>`, `<s>`, `</s>` and the `<SPECIAL_n>`
  slots are special tokens; the slots used as `<think>`, `</think>`, `<TOOLCALL>`, `<AVAILABLE_TOOLS>`,
  `<TOOL_RESPONSE>` (and their closers) are atomic too (llama.cpp keeps them as atomic strings). The role names
  `System`, `User`, `Assistant` after a marker are plain text.
* `llama-nemotron` / `llama-nemotron-v1.5` (Llama-3 vocabulary): the `<|...|>` header tokens are special;
  `<think>`, `<TOOLCALL>` and friends are plain text there, tokenized as ordinary BPE pieces.
* `deepseek-r1` (R1-Distill-Qwen vocabulary): the full-width `<｜User｜>` family is special; `<think>`, `</think>`
  are atomic but not special (they survive `skip_special_tokens`), like Qwen's `<tool_call>`.
* `chatml` (Qwen2.5 vocabulary): `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` are special; `<tool_call>`,
  `</tool_call>` are atomic non-special tokens; `<think>` and `<tools>` are plain text.

Token ids are never assumed: code reads them from the tokenizer (`convert_tokens_to_ids`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from zoo.errors import ZooError

__all__ = ["CHAT_FORMATS", "special_tokens_for", "train_bpe_tokenizer", "tiny_tokenizer"]


@dataclass(frozen=True)
class _TokenSpec:
    """The atomic vocabulary of one chat format.

    Attributes:
        special: tokens marked special (dropped by `decode(skip_special_tokens=True)`), in id order.
        atomic: tokens that are single ids but decode as text even when skipping special tokens.
        bos: beginning-of-sequence token, or None when the format has none (ChatML).
        eos: the token that ends an assistant turn (generation stops on it).
        pad: padding token.
        unk: unknown token, or None (byte-level BPE never needs it; Tekken has one at id 0).
        add_bos: whether plain `tokenizer(text)` prepends `bos` (as the released tokenizers do).
    """

    special: tuple[str, ...]
    atomic: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str
    unk: str | None
    add_bos: bool


_LLAMA3_SPECIAL = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|finetune_right_pad_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
)

_QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_QWEN_ATOMIC = ("<tool_call>", "</tool_call>")

_DEEPSEEK_SPECIAL = (
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜▁pad▁｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",
    "<｜tool▁outputs▁begin｜>",
    "<｜tool▁outputs▁end｜>",
    "<｜tool▁output▁begin｜>",
    "<｜tool▁output▁end｜>",
    "<｜tool▁sep｜>",
)

_SPECS: dict[str, _TokenSpec] = {
    # <unk>=0, <s>=1, </s>=2 as in the Tekken vocabulary (config.json: pad_token_id 0, bos_token_id 1).
    "nemotron-v2": _TokenSpec(
        special=("<unk>", "<s>", "</s>", "<SPECIAL_10>", "<SPECIAL_11>", "<SPECIAL_12>"),
        atomic=(
            "<think>",
            "</think>",
            "<TOOLCALL>",
            "</TOOLCALL>",
            "<AVAILABLE_TOOLS>",
            "</AVAILABLE_TOOLS>",
            "<TOOL_RESPONSE>",
            "</TOOL_RESPONSE>",
        ),
        bos="<s>",
        eos="<SPECIAL_12>",
        pad="<unk>",
        unk="<unk>",
        add_bos=True,
    ),
    "llama-nemotron": _TokenSpec(
        special=_LLAMA3_SPECIAL,
        atomic=(),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|finetune_right_pad_id|>",
        unk=None,
        add_bos=True,
    ),
    "deepseek-r1": _TokenSpec(
        special=_DEEPSEEK_SPECIAL + _QWEN_SPECIAL,
        atomic=("<think>", "</think>") + _QWEN_ATOMIC,
        bos="<｜begin▁of▁sentence｜>",
        eos="<｜end▁of▁sentence｜>",
        pad="<｜▁pad▁｜>",
        unk=None,
        add_bos=True,
    ),
    "chatml": _TokenSpec(
        special=_QWEN_SPECIAL,
        atomic=_QWEN_ATOMIC,
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        unk=None,
        add_bos=False,
    ),
}
# v1.5 (Super-49B-v1.5) keeps the Llama-3 vocabulary; only the template changed.
_SPECS["llama-nemotron-v1.5"] = _SPECS["llama-nemotron"]

CHAT_FORMATS: tuple[str, ...] = tuple(_SPECS)


def _spec(chat_format: str) -> _TokenSpec:
    try:
        return _SPECS[chat_format]
    except KeyError:
        raise ZooError(f"unknown chat format {chat_format!r}; known: {', '.join(CHAT_FORMATS)}") from None


def special_tokens_for(chat_format: str) -> list[str]:
    """Every string that is a single token in `chat_format`'s released tokenizer (special first, then atomic).

    Args:
        chat_format: one of `CHAT_FORMATS`.

    Returns:
        The atomic strings; plain-text markers of the format (e.g. `<think>` under Llama-3) are not included.
    """
    spec = _spec(chat_format)
    return list(spec.special) + list(spec.atomic)


def train_bpe_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int,
    chat_format: str,
    extra_special_tokens: Iterable[str] = (),
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer whose chat markers are atomic, like the format's released tokenizer.

    Args:
        texts: training corpus.
        vocab_size: total size including the 256 byte symbols and all special tokens.
        chat_format: one of `CHAT_FORMATS`; fixes the special tokens and bos/eos/pad.
        extra_special_tokens: more atomic special tokens (e.g. `<IMG_CONTEXT>`, `<|AUDIO|>`), appended after
            the format's own.

    Returns:
        A fast tokenizer with left padding (generation pads on the left), no chat template (the zoo's built-in
        renderer serves it), and `save_pretrained` output that `AutoTokenizer.from_pretrained` reloads.
    """
    spec = _spec(chat_format)
    extra = [t for t in extra_special_tokens if t not in spec.special and t not in spec.atomic]
    special = list(spec.special) + extra
    n_fixed = len(special) + len(spec.atomic) + 256
    if vocab_size < n_fixed:
        raise ZooError(f"vocab_size {vocab_size} is smaller than the 256 bytes + {n_fixed - 256} atomic tokens")

    tok = Tokenizer(models.BPE(unk_token=spec.unk))
    # Byte-level without a prefix space: "Hello" and " Hello" stay distinct, as in GPT-2/Llama-3/Qwen vocabularies.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(spec.atomic),
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    # Atomic non-special tokens are added after training so BPE merges never see their pieces as one word.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.atomic])
    if spec.add_bos:
        bos_id = tok.token_to_id(spec.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B", special_tokens=[(spec.bos, bos_id)]
        )

    kwargs: dict[str, object] = {"eos_token": spec.eos, "pad_token": spec.pad}
    if spec.bos is not None:
        kwargs["bos_token"] = spec.bos
    if spec.unk is not None:
        kwargs["unk_token"] = spec.unk
    if extra:
        kwargs["extra_special_tokens"] = extra
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, padding_side="left", clean_up_tokenization_spaces=False, **kwargs
    )
    return hf


# A few KB of mixed text so the tiny tokenizer learns merges for prose, math, code and tool-call JSON.
_TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog. A model zoo keeps many models in one place.",
    "Solve 2x + 3 = 7. Subtract 3 from both sides: 2x = 4. Divide by 2: x = 2. The answer is \\boxed{2}.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "What is the capital of France? The capital of France is Paris.",
    "You are a helpful and harmless assistant. You should think step-by-step.",
    "def add(a: int, b: int) -> int:\n    return a + b\n\nprint(add(2, 3))\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n",
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    '[{"name": "search", "arguments": {"query": "nemotron"}}]',
    '{"type": "function", "function": {"name": "get_time", "description": "Current time", "parameters": {}}}',
    "Let me think about this. First, I need to understand the question. Then I will answer it.",
    "Hybrid Mamba-Transformer models replace most attention layers with Mamba-2 layers.",
    "System User Assistant tool response think /think /no_think detailed thinking on off",
    "Hello! How can I help you today? I am fine, thank you. Goodbye.",
    "1 2 3 4 5 6 7 8 9 10 11 12 100 1000 3.14 2.71 0.5 -1 +1 = * / ( ) [ ] { } < > , . ; : ! ?",
    "Write Python code to solve the problem. Please place the solution code in the following format:",
    "```python\n# Your solution code here\n```",
    "The weather in Paris is sunny with a temperature of 21 degrees.",
    "Numbers, letters and words: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu.",
    "In 2025 NVIDIA released Nemotron Nano 2, a 9B hybrid model for reasoning with a thinking budget.",
]


@functools.cache
def tiny_tokenizer(chat_format: str, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A small real tokenizer for tests: BPE trained on a built-in corpus, cached per process.

    Args:
        chat_format: one of `CHAT_FORMATS`.
        vocab_size: total vocabulary; keep it at or below the tiny model's `vocab_size`.

    Returns:
        The cached tokenizer. Callers that mutate it (e.g. add tokens) should `copy.deepcopy` it first.
    """
    corpus = _TINY_CORPUS * 4 + special_tokens_for(chat_format)
    return train_bpe_tokenizer(corpus, vocab_size=vocab_size, chat_format=chat_format)
