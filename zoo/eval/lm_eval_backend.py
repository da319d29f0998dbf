"""An lm-eval model backend named ``zoo``: ``lm_eval --model zoo --model_args name=nano-9b-v2,tiny=True``.

Importing this module registers the backend (lm-eval finds models through its registry, so the ``lm_eval``
command needs ``--include_path``-style loading or ``python -m zoo.eval.lm_eval_backend ...`` which imports it
first and then runs lm-eval's own CLI).

Log-likelihoods are computed with one forward pass per (context, continuation) pair, left-truncated to
``max_length``; generation goes through `model.generate` (greedy unless the task asks for sampling).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

__all__ = ["ZooLM"]


@register_model("zoo")
class ZooLM(LM):
    """lm-eval adapter over any `zoo.load`-able causal language model."""

    def __init__(self, name: str | None = None, model: Any = None, tiny: bool = False, seed: int = 0,
                 max_length: int = 2048, max_gen_toks: int = 256, batch_size: int = 1, **_: Any) -> None:
        super().__init__()
        if model is None:
            import zoo

            if name is None:
                raise ValueError("zoo lm-eval backend: pass model_args name=NAME|PATH")
            model = zoo.load(name, tiny=str(tiny).lower() in ("1", "true", "yes"), seed=int(seed))
        self.model = model.eval()
        self.tok = model.tokenizer
        if self.tok is None:
            raise ValueError("zoo lm-eval backend: the model has no tokenizer")
        self.max_length = int(max_length)
        self.max_gen_toks = int(max_gen_toks)

    # -------------------------------------------------------------------------------------------- scoring
    def _encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def _continuation_logprob(self, ctx_ids: list[int], cont_ids: list[int]) -> tuple[float, bool]:
        ids = (ctx_ids + cont_ids)[-(self.max_length + 1) :]
        n = len(cont_ids)
        inp = torch.tensor([ids[:-1]])
        logits = self.model(inp).logits[0, -n:].float()  # (n, vocab): predictions of the continuation tokens
        logp = torch.log_softmax(logits, dim=-1)
        target = torch.tensor(ids[-n:])
        total = logp.gather(1, target[:, None]).sum().item()
        greedy = bool((logp.argmax(-1) == target).all().item())
        return total, greedy

    def loglikelihood(self, requests: list) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            context, continuation = req.args
            ctx = self._encode(context)
            cont = self._encode(continuation)
            if not ctx:  # nothing to condition on: start from the end-of-text token
                ctx = [self.tok.eos_token_id or 0]
            out.append(self._continuation_logprob(ctx, cont))
        return out

    def loglikelihood_rolling(self, requests: list) -> list[float]:
        out = []
        for req in requests:
            ids = self._encode(req.args[0])
            total, start = 0.0, 0
            prefix = [self.tok.eos_token_id or 0]
            # Windows of max_length tokens, each conditioned on what precedes it (up to the window size).
            while start < len(ids):
                chunk = ids[start : start + self.max_length]
                ctx = (prefix + ids[:start])[-self.max_length :]
                total += self._continuation_logprob(ctx, chunk)[0]
                start += len(chunk)
            out.append(total)
        return out

    @torch.inference_mode()
    def generate_until(self, requests: list) -> list[str]:
        out = []
        for req in requests:
            context, kwargs = req.args
            kwargs = dict(kwargs or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.pop("max_gen_toks", self.max_gen_toks))
            temperature = float(kwargs.pop("temperature", 0.0) or 0.0)
            ids = self._encode(context)[-self.max_length :]
            gen = self.model.generate([ids], max_new_tokens=max_new, temperature=temperature,
                                      stop=until or None)[0]
            text = self.tok.decode(gen, skip_special_tokens=True)
            for s in until:  # lm-eval expects the stop string itself removed
                text = text.split(s, 1)[0]
            out.append(text)
        return out


if __name__ == "__main__":  # `python -m zoo.eval.lm_eval_backend --model zoo ...`: lm-eval's CLI with us registered
    from lm_eval.__main__ import cli_evaluate

    sys.exit(cli_evaluate())
