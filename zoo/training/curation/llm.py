"""Text-generation backends used by curation (LLM cleanup, Prismatic Synthesis): a zoo/torch model or an
OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp server, ...), behind one tiny interface.

`TextGenerator.generate(prompts) -> list[str]` takes user-message strings and returns completions. Sampling
defaults are the Nemotron-CC-Math cleanup settings (T 0.7, top-p 0.8, top-k 20).

`ModelGenerator` drives any causal LM module with `model(input_ids).logits` (a `zoo.load(...)` model or a plain
`nn.Module`): zoo models (they have `new_cache`) go through `zoo.generate.generate`, batched over the hybrid
cache; any other module gets a plain sampling loop that recomputes the prefix each step. Curation uses local
models at tiny scale; real runs point at a served endpoint.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from zoo.errors import ZooError


@runtime_checkable
class TextGenerator(Protocol):
    """Anything that turns user prompts into completions."""

    def generate(self, prompts: list[str]) -> list[str]:
        """One completion per prompt, in order."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class OpenAIChatGenerator:
    """POSTs each prompt as one user message to `{base_url}/chat/completions`.

    `top_k` is not part of the OpenAI schema; vLLM and most local servers accept it as an extra field, and
    servers that do not know it ignore it.
    """

    base_url: str
    model: str
    api_key: str | None = None
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int | None = 20
    max_tokens: int = 4096
    system: str | None = None
    timeout: float = 600.0
    retries: int = 3

    def generate(self, prompts: list[str]) -> list[str]:
        return [self._one(p) for p in prompts]

    def _one(self, prompt: str) -> str:
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": prompt}
        ]
        body: dict[str, Any] = {
            "model": self.model, "messages": messages, "temperature": self.temperature, "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.top_k is not None:
            body["top_k"] = self.top_k
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries):
            req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return str(data["choices"][0]["message"]["content"] or "")
            except urllib.error.HTTPError as e:
                # 4xx is our request's fault and will not improve on retry.
                if 400 <= e.code < 500:
                    raise ZooError(f"{url}: HTTP {e.code}: {e.read()[:300].decode('utf-8', 'replace')}") from None
                last = e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = e
            except (KeyError, IndexError, json.JSONDecodeError) as e:
                raise ZooError(f"{url}: response is not an OpenAI chat completion ({e!r})") from None
            time.sleep(min(2.0**attempt, 10.0))
        raise ZooError(f"{url}: endpoint failed after {self.retries} attempts: {last}")


# ---------------------------------------------------------------------------------------------------------------
# Local model
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ModelGenerator:
    """Sample from a causal LM with a Hugging Face tokenizer.

    Args (fields):
        model: module with `model(input_ids).logits` of shape (b, s, vocab).
        tokenizer: tokenizer; its chat template is applied when it has one.
        max_new_tokens: completion length cap.
        temperature, top_p, top_k: sampling; temperature 0 means greedy.
        max_prompt_tokens: prompts are left-truncated to this many tokens (tiny models have short contexts).
        seed: seeds a private generator so runs repeat.
    """

    model: torch.nn.Module
    tokenizer: Any
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int | None = 20
    max_prompt_tokens: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)

    def encode_prompt(self, prompt: str) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          tokenize=True)
            ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
        else:
            ids = tok(prompt)["input_ids"]
        return ids[-self.max_prompt_tokens:]

    @torch.no_grad()
    def generate(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        if hasattr(self.model, "new_cache"):
            from zoo.generate import generate

            self._calls = getattr(self, "_calls", 0) + 1
            eos = getattr(self.tokenizer, "eos_token_id", None)
            outs = generate(self.model, [self.encode_prompt(p) for p in prompts], max_new_tokens=self.max_new_tokens,
                            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or 0,
                            seed=self.seed * 1_000_003 + self._calls)
            return [self.tokenizer.decode([t for t in o if t != eos], skip_special_tokens=True) for o in outs]
        return [self._one(p) for p in prompts]

    def _one(self, prompt: str) -> str:
        ids = torch.tensor([self.encode_prompt(prompt)], dtype=torch.long)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        dev = next(self.model.parameters()).device
        ids = ids.to(dev)
        new: list[int] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for _ in range(self.max_new_tokens):
                logits = self.model(ids).logits[0, -1].float()  # (vocab,)
                nxt = sample_token(logits, self.temperature, self.top_p, self.top_k, self._gen)
                if eos is not None and nxt == eos:
                    break
                new.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]], device=dev)], dim=1)
        finally:
            self.model.train(was_training)
        return self.tokenizer.decode(new, skip_special_tokens=True)


def sample_token(logits: torch.Tensor, temperature: float, top_p: float, top_k: int | None,
                 gen: torch.Generator) -> int:
    """Draw one token id from `logits` (vocab,) with temperature, top-k then top-p (nucleus) truncation."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.cpu() / temperature
    if top_k is not None and 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the token that crosses the line stays in).
        drop = sorted_p.cumsum(0) - sorted_p > top_p
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=gen))
