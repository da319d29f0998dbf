"""Autoregressive generation over the hybrid cache: greedy and sampled decoding, stop rules, streaming, batches.

The loop is the plain one: a prefill forward over the (left-padded) prompts fills a `HybridCache`, then one forward
per new token reads and extends it. Attention layers keep K/V for every position; Mamba layers keep a fixed-size
conv + SSM state, so decode memory grows only with the few attention layers.

Design choices:

* Left padding only (the backbone's contract): padded positions are zeroed by Mamba blocks and masked by attention,
  so a padded row decodes exactly the tokens it would decode alone.
* Rows that finished keep being fed a token (their output is ignored) so every decode step is one batched forward;
  the loop ends when every row has finished.
* Stop strings are checked on decoded text of the newest tokens only (a window large enough for the longest stop
  string), so checking costs O(1) per step rather than re-decoding the whole completion.
* Streaming yields text pieces of one sequence; bytes of an unfinished UTF-8 character and text that may still turn
  out to be the start of a stop string are held back until they resolve.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from zoo.errors import ZooError

__all__ = ["generate", "TextStream", "sample_next"]

# Byte-level BPE can split one character over up to 4 tokens, so a stop string of n characters spans at most
# 4n tokens; the window adds slack for tokens that decode to nothing.
_TOKENS_PER_CHAR = 4


# ---------------------------------------------------------------------------------------------- sampling
def sample_next(
    logits: Tensor,
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick the next token of every row.

    Args:
        logits: (b, v) next-token logits.
        temperature: 0 means greedy (argmax); otherwise logits are divided by it before the softmax.
        top_p: nucleus sampling: keep the smallest set of tokens whose probability mass reaches `top_p`.
        top_k: keep only the `top_k` most likely tokens (0 = all).
        generator: RNG for reproducible sampling.

    Returns:
        (b,) token ids.
    """
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ZooError(f"bad sampling settings: temperature={temperature}, top_p={top_p}, top_k={top_k}")
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (b, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the mass *before* it already reaches top_p; the most likely token always stays.
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ---------------------------------------------------------------------------------------------- inputs
def _device_of(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def _pad_id(model: Any) -> int:
    tok = getattr(model, "tokenizer", None)
    for cand in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if isinstance(cand, int):
            return cand
    return 0


def _as_batch(
    input_ids: Tensor | Sequence[int] | Sequence[Sequence[int]],
    attention_mask: Tensor | None,
    pad_id: int,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Normalise prompts to left-padded (b, s) ids and a 0/1 mask; ragged Python lists are left-padded here."""
    if isinstance(input_ids, Tensor):
        ids = input_ids if input_ids.dim() == 2 else input_ids.unsqueeze(0)
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask.reshape(ids.shape)
    else:
        rows = [list(input_ids)] if input_ids and isinstance(input_ids[0], int) else [list(r) for r in input_ids]
        if not rows or any(len(r) == 0 for r in rows):
            raise ZooError("generate: every prompt needs at least one token")
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        if attention_mask is not None:
            raise ZooError("generate: pass attention_mask only with a tensor of input_ids")
    if ids.shape[1] == 0:
        raise ZooError("generate: every prompt needs at least one token")
    if bool((mask[:, -1] == 0).any()):
        raise ZooError("generate: attention_mask must use left padding (the last position of every row is padding)")
    return ids.to(device=device, dtype=torch.long), mask.to(device=device, dtype=torch.long)


def _eos_ids(model: Any, eos_token_id: int | Sequence[int] | None) -> set[int]:
    if eos_token_id is not None:
        return {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id)
    ids: set[int] = set()
    tok = getattr(model, "tokenizer", None)
    if isinstance(getattr(tok, "eos_token_id", None), int):
        ids.add(tok.eos_token_id)
    # Checkpoints list extra end tokens in config.json (Llama-3: end_of_text, eom, eot); honour those too.
    hf_eos = (getattr(model, "hf_config", None) or {}).get("eos_token_id")
    for i in [hf_eos] if isinstance(hf_eos, int) else (hf_eos or []):
        if tok is None or i < len(tok):
            ids.add(int(i))
    return ids


def _split_stop(stop: str | int | Sequence[str | int] | None) -> tuple[set[int], list[str]]:
    if stop is None:
        return set(), []
    items = [stop] if isinstance(stop, (str, int)) else list(stop)
    ids = {s for s in items if isinstance(s, int)}
    strings = [s for s in items if isinstance(s, str) and s]
    if len(ids) + len(strings) != len(items):
        raise ZooError(f"generate: stop must be strings or token ids, got {stop!r}")
    return ids, strings


def _accepts(model: Any, name: str) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return name in params


# ---------------------------------------------------------------------------------------------- the loop
@dataclass
class _Row:
    """Per-sequence decode state."""

    tokens: list[int] = field(default_factory=list)
    done: bool = False
    stop_reason: str | None = None  # "eos" | "stop" | "length"


class _StopChecker:
    """Finds stop strings in the newest decoded text of a row."""

    def __init__(self, tokenizer: Any, strings: list[str]) -> None:
        if strings and tokenizer is None:
            raise ZooError("generate: stop strings need model.tokenizer to decode text")
        self.tokenizer = tokenizer
        self.strings = strings
        self.window = _TOKENS_PER_CHAR * max((len(s) for s in strings), default=0) + 2

    def hit(self, tokens: list[int]) -> bool:
        if not self.strings:
            return False
        # Only text that the newest token completed can contain a new stop string: check the window's tail.
        # (Earlier text was checked on earlier steps, and a hit ends the row at once.)
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=False)
        return any(s in tail for s in self.strings)


def _decode_steps(
    model: Any,
    input_ids: Any,
    attention_mask: Tensor | None,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    stop: Any,
    seed: int | None,
    eos_token_id: int | Sequence[int] | None,
    model_inputs: dict[str, Any],
) -> Iterator[list[_Row]]:
    """Run prefill + decode, yielding the rows after every new token."""
    if max_new_tokens < 0:
        raise ZooError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    device = _device_of(model)
    ids, mask = _as_batch(input_ids, attention_mask, _pad_id(model), device)
    b = ids.shape[0]
    stop_ids, stop_strings = _split_stop(stop)
    end_ids = _eos_ids(model, eos_token_id) | stop_ids
    checker = _StopChecker(getattr(model, "tokenizer", None), stop_strings)
    generator = None
    if seed is not None and temperature > 0:
        generator = torch.Generator(device=device).manual_seed(seed)
    rows = [_Row() for _ in range(b)]
    if max_new_tokens == 0:
        yield rows
        return

    extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    with torch.inference_mode():
        cache = model.new_cache(b)
        # Modality inputs (pixel values, audio features) belong to the prompt: prefill only.
        out = model(input_ids=ids, attention_mask=mask, cache=cache, **model_inputs, **extra)
        cache = out.cache if out.cache is not None else cache
        logits = out.logits[:, -1]
        step_mask = torch.ones(b, 1, dtype=torch.long, device=device)
        # `LanguageModel.decode_step` computes the same logits as the forward below with less per-token work (and runs
        # the compiled blocks after `model.compile_decode()`); other models keep the plain forward.
        decode_step = getattr(model, "decode_step", None)
        for step in range(max_new_tokens):
            nxt = sample_next(logits, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator)
            for row, t in zip(rows, nxt.tolist()):
                if row.done:
                    continue
                row.tokens.append(t)
                if t in end_ids:
                    row.done, row.stop_reason = True, ("stop" if t in stop_ids else "eos")
                elif checker.hit(row.tokens):
                    row.done, row.stop_reason = True, "stop"
                elif step == max_new_tokens - 1:
                    row.done, row.stop_reason = True, "length"
            yield rows
            if all(r.done for r in rows):
                return
            if decode_step is not None:
                logits = decode_step(nxt[:, None], cache)
                continue
            out = model(input_ids=nxt[:, None], attention_mask=step_mask, cache=cache)
            cache = out.cache if out.cache is not None else cache
            logits = out.logits[:, -1]


class TextStream:
    """Iterator over the decoded text pieces of one generated sequence (`generate(..., stream=True)`).

    After the iterator is exhausted, `token_ids` holds the generated ids (stop token included, like
    `generate` returns them), `text` the full text (stop strings and end tokens excluded) and `stop_reason` one of
    "eos", "stop", "length".
    """

    def __init__(self, steps: Iterator[list[_Row]], tokenizer: Any, stop_strings: list[str], end_ids: set[int]):
        if tokenizer is None:
            raise ZooError("generate(stream=True) needs model.tokenizer to decode text")
        self._steps = steps
        self._tok = tokenizer
        self._stops = stop_strings
        self._end_ids = end_ids
        self.token_ids: list[int] = []
        self.text = ""
        self.stop_reason: str | None = None
        self._emitted = 0

    def _visible(self, tokens: list[int], final: bool) -> str:
        """Decoded text that is safe to show now."""
        body = tokens[:-1] if tokens and tokens[-1] in self._end_ids else tokens
        text = self._tok.decode(body, skip_special_tokens=False)
        cut = min((text.find(s) for s in self._stops if s in text), default=-1)
        if cut >= 0:
            return text[:cut]
        if final:
            return text
        # Hold back an unfinished UTF-8 character and any suffix that could still grow into a stop string.
        text = text.rstrip("\ufffd")
        hold = max((k for s in self._stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return text[: len(text) - hold]

    def __iter__(self) -> Iterator[str]:
        for rows in self._steps:
            row = rows[0]
            self.token_ids, self.stop_reason = row.tokens, row.stop_reason
            visible = self._visible(row.tokens, final=row.done)
            if len(visible) > self._emitted:
                piece, self._emitted = visible[self._emitted :], len(visible)
                self.text = visible
                yield piece
            if row.done:
                break
        self.text = self._visible(self.token_ids, final=True)
        if len(self.text) > self._emitted:
            piece, self._emitted = self.text[self._emitted :], len(self.text)
            yield piece


def generate(
    model: Any,
    input_ids: Tensor | Sequence[int] | Sequence[Sequence[int]],
    attention_mask: Tensor | None = None,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop: str | int | Sequence[str | int] | None = None,
    seed: int | None = None,
    stream: bool = False,
    eos_token_id: int | Sequence[int] | None = None,
    **model_inputs: Any,
) -> list[list[int]] | TextStream:
    """Generate continuations of one or more prompts with any zoo model.

    Shapes: b = batch size, s = prompt length (after left padding).

    Args:
        model: provides `new_cache(b)` and `model(input_ids=, attention_mask=, cache=, **model_inputs)` returning
            an output with `.logits` (b, s, v) and `.cache`; `model.tokenizer` decodes text for stop strings and
            streaming.
        input_ids: (b, s) or (s,) tensor, one list of ids, or a list of ragged lists (left-padded here).
        attention_mask: (b, s) 0/1 for a tensor `input_ids`, left padding only.
        max_new_tokens: upper bound on generated tokens per sequence.
        temperature: 0 = greedy; > 0 samples.
        top_p: nucleus sampling mass.
        top_k: keep the k most likely tokens (0 = all).
        stop: stop strings and/or stop token ids; a sequence ends with the token that completes one.
        seed: seeds a private RNG so sampled generations are reproducible (the global RNG is untouched).
        stream: return a `TextStream` of text pieces (batch of one) instead of the token ids.
        eos_token_id: end tokens; default: the tokenizer's eos plus config.json's `eos_token_id`s.
        **model_inputs: extra prefill-only inputs (e.g. `pixel_values`).

    Returns:
        Per sequence, the generated token ids (the end or stop token included when one ended it); or a
        `TextStream` when `stream=True`.
    """
    steps = _decode_steps(
        model,
        input_ids,
        attention_mask,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        stop=stop,
        seed=seed,
        eos_token_id=eos_token_id,
        model_inputs=model_inputs,
    )
    if stream:
        n_rows = input_ids.shape[0] if isinstance(input_ids, Tensor) and input_ids.dim() == 2 else None
        if n_rows is None and not isinstance(input_ids, Tensor) and input_ids and not isinstance(input_ids[0], int):
            n_rows = len(input_ids)
        if n_rows not in (None, 1):
            raise ZooError(f"generate(stream=True) streams one sequence, got a batch of {n_rows}")
        stop_ids, stop_strings = _split_stop(stop)
        end_ids = _eos_ids(model, eos_token_id) | stop_ids
        return TextStream(steps, getattr(model, "tokenizer", None), stop_strings, end_ids)
    final: list[_Row] = []
    for rows in steps:  # the rows are updated in place; keep the last view
        final = rows
    return [r.tokens for r in final]
