"""LanguageModel: the one backbone every zoo language model runs on.

    embed -> blocks (x = x + mixer(norm(x))) -> norm_f -> lm_head

A block's mixer is Mamba-2, attention, an MLP or a linear map (config.py explains how each family maps onto
this). Everything a forward pass needs beyond the tokens (RoPE tables, the attention mask, the Mamba padding
mask, packed-document ids) is computed once per call into a `ForwardContext` and shared by all blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.language.attention import Attention
from zoo.language.cache import HybridCache, KVState, MambaState
from zoo.language.config import LMConfig
from zoo.language.mamba2 import Mamba2, mamba_step
from zoo.language.mlp import MLP, LinearMixer
from zoo.language.rope import rope_cos_sin, rope_inv_freq

MIXERS: dict[str, type[nn.Module]] = {"mamba": Mamba2, "attention": Attention, "mlp": MLP, "linear": LinearMixer}


@dataclass
class ModelOutput:
    """logits (b, l, vocab); cache (the one passed in, advanced) or None; hidden_states (b, l, hidden) after norm_f."""

    logits: Tensor
    cache: HybridCache | None = None
    hidden_states: Tensor | None = None


@dataclass
class ForwardContext:
    """Per-call tensors shared by every block (built once, not per block)."""

    attn_mask: Tensor | None  # (b, 1, l, t) bool, True = attend; None = plain causal or no mask needed
    causal_needed: bool  # use SDPA's is_causal when attn_mask is None
    pad_mask: Tensor | None  # (b, l, 1) model dtype, 0 at padded positions; None when nothing is padded
    seq_idx: Tensor | None  # (b, l) int32 document ids for packed sequences
    rope_cos: Tensor | None
    rope_sin: Tensor | None
    has_history: bool  # the cache already holds earlier tokens


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 (weight applied in fp32, then cast back), as the Nemotron-H checkpoints expect."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # One F.rms_norm on fp32 input and weight (the upcasts are no-ops for fp32 models): same math as the
        # five-op form, fewer kernel launches on the decode path.
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps).to(x.dtype)


class Block(nn.Module):
    """x + mixer(norm(x))."""

    def __init__(self, config: LMConfig, index: int) -> None:
        super().__init__()
        spec = config.blocks[index]
        self.kind = spec.mixer
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)
        self.mixer = MIXERS[spec.mixer](config, spec)

    def forward(self, x: Tensor, ctx: ForwardContext, state=None) -> Tensor:
        return x + self.mixer(self.norm(x), ctx, state)

    def step(self, x: Tensor, state: KVState | MambaState | None, cos: Tensor | None, sin: Tensor | None) -> Tensor:
        """One decode token on (b, hidden) rows (no sequence axis, no context object); see `decode_step`."""
        h = self.norm(x)
        if self.kind == "mamba":
            return x + self.mixer.step(h, state)
        if self.kind == "attention":
            return x + self.mixer.step(h, state, cos, sin)
        return x + self.mixer(h)


class LanguageModel(nn.Module):
    """The shared backbone. See module docstring; shapes: b batch, l new tokens, t tokens incl. cache."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.num_layers))
        self.norm_f = RMSNorm(config.hidden_size, config.norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight
        if config.rope is not None:
            self.register_buffer("rope_inv_freq", rope_inv_freq(config.rope, config.head_dim), persistent=False)
        else:
            self.rope_inv_freq = None

    # ------------------------------------------------------------------ construction helpers
    @torch.no_grad()
    def init_weights(self, generator_seed: int | None = None) -> None:
        """Explicit initialisation (the model may have been built on `meta`): normal(0, initializer_range) for
        matrices and embeddings, ones for norms, Mamba-2's own init for A, D, dt_bias."""
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv1d):
                nn.init.normal_(module.weight, std=0.2)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif hasattr(module, "weight") and module.weight is not None and module.weight.dim() == 1:
                nn.init.ones_(module.weight)
            if isinstance(module, Mamba2):
                module.reset_ssm_parameters()
        self.reset_derived_buffers()

    def reset_derived_buffers(self) -> None:
        """Recompute what is derived, not stored (RoPE table, tied head) after `to_empty` from `meta`."""
        if self.config.rope is not None:
            self.rope_inv_freq = rope_inv_freq(self.config.rope, self.config.head_dim).to(self.embed.weight.device)
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight

    def new_cache(self, batch_size: int) -> HybridCache:
        """Empty decode cache on this model's device/dtype."""
        p = self.embed.weight
        states = []
        for blk in self.blocks:
            states.append(blk.mixer.new_state(batch_size, p.device, p.dtype) if blk.kind in ("mamba", "attention")
                          else None)
        return HybridCache(states, batch_size, p.device)

    def embed_tokens(self, input_ids: Tensor) -> Tensor:
        """(b, l) -> (b, l, hidden). Multimodal models overwrite placeholder rows of this before the blocks."""
        return self.embed(input_ids)

    # ------------------------------------------------------------------ forward
    def _context(self, b: int, l: int, attention_mask: Tensor | None, cache: HybridCache | None,
                 document_ids: Tensor | None, dtype: torch.dtype, device: torch.device) -> ForwardContext:
        has_history = cache is not None and cache.seq_len > 0
        if attention_mask is not None and attention_mask.shape != (b, l):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(b, l)} "
                             "(on cached calls it covers the new tokens only)")
        padded = attention_mask is not None and not bool(attention_mask.all())
        pad_mask = attention_mask.to(dtype)[..., None] if padded else None
        past = cache.seq_len if cache is not None else 0
        # key validity over past + new tokens, None while nothing is padded
        key_mask = None
        if padded or (cache is not None and cache.key_mask is not None):
            old = cache.key_mask if cache is not None and cache.key_mask is not None else \
                torch.ones(b, past, dtype=torch.bool, device=device)
            new = attention_mask.bool() if attention_mask is not None else torch.ones(b, l, dtype=torch.bool,
                                                                                     device=device)
            key_mask = torch.cat([old, new], dim=1)  # (b, t)
        attn_mask, causal_needed = None, l > 1
        if document_ids is not None:
            if has_history:
                raise ValueError("document_ids (packed sequences) cannot be combined with a filled cache")
            same = document_ids[:, :, None] == document_ids[:, None, :]
            causal = torch.ones(l, l, dtype=torch.bool, device=device).tril()
            attn_mask = (same & causal)[:, None]
        elif key_mask is not None:
            t = key_mask.shape[1]
            causal = torch.ones(l, t, dtype=torch.bool, device=device).tril(diagonal=t - l)
            attn_mask = causal[None, None] & key_mask[:, None, None, :]
            # a fully padded query row would give NaN in SDPA; let it attend to itself (its output is unused)
            attn_mask = attn_mask | _diag(l, t, device)[None, None]
        elif has_history and l > 1:
            t = past + l
            attn_mask = torch.ones(l, t, dtype=torch.bool, device=device).tril(diagonal=t - l)[None, None]
        cos = sin = None
        if self.rope_inv_freq is not None:
            start = cache.next_position if cache is not None else torch.zeros(b, dtype=torch.long, device=device)
            if attention_mask is not None:
                positions = start[:, None] + attention_mask.long().cumsum(1) - 1
                positions = positions.clamp(min=0)
            elif document_ids is not None:
                boundary = torch.ones_like(document_ids, dtype=torch.bool)
                boundary[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
                idx = torch.arange(l, device=device).expand(b, l)
                seg_start = torch.where(boundary, idx, torch.zeros_like(idx)).cummax(1).values
                positions = idx - seg_start
            else:
                positions = start[:, None] + torch.arange(l, device=device)
            cos, sin = rope_cos_sin(self.rope_inv_freq, positions, dtype)
        seq_idx = document_ids.to(torch.int32) if document_ids is not None else None
        return ForwardContext(attn_mask, causal_needed, pad_mask, seq_idx, cos, sin, has_history)

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                cache: HybridCache | None = None, *, inputs_embeds: Tensor | None = None,
                document_ids: Tensor | None = None, logits_to_keep: int = 0) -> ModelOutput:
        """Run the model.

        Args:
            input_ids: (b, l) token ids (or give `inputs_embeds` (b, l, hidden)).
            attention_mask: (b, l) 0/1 for the new tokens, left padding only.
            cache: a `HybridCache` from `new_cache`; it is advanced in place.
            document_ids: (b, l) ids of packed samples (no cache).
            logits_to_keep: compute logits for the last n positions only (0 = all).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        b, l, _ = x.shape
        ctx = self._context(b, l, attention_mask, cache, document_ids, x.dtype, x.device)
        for i, blk in enumerate(self.blocks):
            x = blk(x, ctx, cache.layers[i] if cache is not None else None)
        if cache is not None:
            # An all-ones mask (generate passes one every step) is no padding: keeping the cache's key_mask at None
            # lets later decode steps skip building an attention mask altogether.
            cache.advance(attention_mask if ctx.pad_mask is not None else None, l)
        h = self.norm_f(x)
        logits = self.lm_head(h[:, -logits_to_keep:] if logits_to_keep else h)
        return ModelOutput(logits=logits, cache=cache, hidden_states=h)

    # ------------------------------------------------------------------ decode fast path
    @torch.no_grad()
    def decode_step(self, input_ids: Tensor, cache: HybridCache) -> Tensor:
        """Logits of one new token per row, advancing `cache`: what `forward(input_ids, cache=cache)` computes for a
        decode step, with less per-step work.

        Args:
            input_ids: (b, 1) token ids.
            cache: a `HybridCache` that already holds the prompt (prefill through `forward`).

        Returns:
            (b, vocab) logits in the model dtype.

        The fast path applies while no row of the cache is padded (the usual case: one prompt, or equal-length
        prompts): no `ForwardContext`, no mask or position bookkeeping beyond the RoPE row, blocks run on (b, hidden)
        rows through their `step` methods (the same ops as their l == 1 branch), `-exp(A_log)` reused between steps.
        A padded cache, an empty one, more than one token, a subclass with its own `forward`, or forward hooks on the
        blocks or mixers (which `step` would bypass) go through `forward` unchanged. No autograd.
        """
        if (input_ids.shape[1] != 1 or cache.seq_len == 0 or cache.key_mask is not None
                or type(self).forward is not LanguageModel.forward or self._block_hooks()):
            return self.forward(input_ids, cache=cache).logits[:, -1]
        x = self.embed_tokens(input_ids)[:, 0]  # (b, hidden)
        cos = sin = None
        if self.rope_inv_freq is not None:
            cos, sin = rope_cos_sin(self.rope_inv_freq, cache.next_position[:, None], x.dtype)  # (b, 1, 1, d)
        compiled = self.__dict__.get("_compiled_steps")  # {"mamba": fn, "mlp": fn} after compile_decode()
        for blk, state in zip(self.blocks, cache.layers):
            if compiled is not None and blk.kind in compiled:
                x = _COMPILED_CALLS[blk.kind](compiled[blk.kind], blk, x, state)
            else:
                x = blk.step(x, state, cos, sin)
        cache.advance(None, 1)
        return self.lm_head(self.norm_f(x))

    def _block_hooks(self) -> bool:
        """Whether forward hooks would see Block / mixer calls (global ones, or on any block or mixer)."""
        from torch.nn.modules import module as _m

        if _m._global_forward_hooks or _m._global_forward_pre_hooks:
            return True
        return any(m._forward_hooks or m._forward_pre_hooks for blk in self.blocks for m in (blk, blk.mixer))

    def compile_decode(self, **compile_kwargs: Any) -> LanguageModel:
        """Opt in to `torch.compile` for the Mamba and MLP blocks of `decode_step` (off unless called; nothing is
        compiled at import). Returns self.

        Each Mamba / MLP block step (pre-norm, mixer, residual) is one compiled function of tensors, shared by every
        block of the kind (same shapes, so one graph each, compiled on the first decode step, recompiled if the batch
        size changes). Attention and linear blocks stay eager (the K/V length changes every step). The compiled
        functions read the weights as tensors, so the projections must be plain `nn.Linear` (not FP8 or adapter
        layers) and the blocks' modules must carry no hooks (checked here; hooks added later are not seen).
        `compile_kwargs` go to `torch.compile` (e.g. `mode=...`). `uncompile_decode()` undoes it. On CPU it is no
        faster than the eager `decode_step` (docs/performance.md); it is meant for GPUs.
        """
        for blk in self.blocks:
            for m in blk.modules():
                if isinstance(m, nn.Linear) and type(m) is not nn.Linear:
                    raise ValueError(f"compile_decode: {type(m).__name__} layers are not supported (plain nn.Linear)")
                if m._forward_hooks or m._forward_pre_hooks:
                    raise ValueError("compile_decode: the compiled block steps would bypass module hooks; remove them")
        kwargs = {"dynamic": False, "fullgraph": True} | compile_kwargs
        # Kept in __dict__ (not a submodule or buffer): nothing of it is saved, copied into state_dict or moved by .to
        self.__dict__["_compiled_steps"] = {"mamba": torch.compile(_mamba_block_step, **kwargs),
                                            "mlp": torch.compile(_mlp_block_step, **kwargs)}
        return self

    def uncompile_decode(self) -> LanguageModel:
        """Back to the eager `decode_step`. Returns self."""
        self.__dict__.pop("_compiled_steps", None)
        return self


def _mamba_block_step(x: Tensor, norm_w: Tensor, eps: float, conv_state: Tensor, ssm_state: Tensor, in_w: Tensor,
                      conv_w: Tensor, conv_b: Tensor | None, dt_bias: Tensor, A: Tensor, D: Tensor, gnorm_w: Tensor,
                      gnorm_eps: float, out_w: Tensor, dims: tuple[int, int, int, int, int, int],
                      dt_clamp_min: float | None) -> Tensor:
    """x (b, hidden) + Mamba2(RMSNorm(x)) for one token, as a function of tensors (what `compile_decode` compiles)."""
    h = F.rms_norm(x.float(), norm_w.shape, norm_w.float(), eps).to(x.dtype)
    return x + mamba_step(h, conv_state, ssm_state, lambda t: F.linear(t, in_w), conv_w, conv_b, dt_bias, A, D,
                          gnorm_w, lambda t: F.linear(t, out_w), dims, gnorm_eps, dt_clamp_min)


def _mlp_block_step(x: Tensor, norm_w: Tensor, eps: float, up_w: Tensor, down_w: Tensor, swiglu: bool) -> Tensor:
    """x (b, hidden) + MLP(RMSNorm(x)) as in `MLP.forward` (relu2, or SwiGLU with `up_w` the fused gate_up weight),
    as a function of tensors (what `compile_decode` compiles)."""
    h = F.rms_norm(x.float(), norm_w.shape, norm_w.float(), eps).to(x.dtype)
    if swiglu:
        gate, up = F.linear(h, up_w).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, down_w)
    return x + F.linear(F.relu(F.linear(h, up_w)).square(), down_w)


def _call_mamba(fn: Any, blk: Block, x: Tensor, state: MambaState) -> Tensor:
    m = blk.mixer
    return fn(x, blk.norm.weight, blk.norm.eps, state.conv, state.ssm, m.in_proj.weight,
              m.conv1d.weight.view(m.conv_dim, m.k), m.conv1d.bias, m.dt_bias, m.neg_A(), m.D, m.norm.weight,
              m.norm.eps, m.out_proj.weight, m.step_dims(), m.dt_clamp_min)


def _call_mlp(fn: Any, blk: Block, x: Tensor, state: None) -> Tensor:
    m = blk.mixer
    swiglu = m.activation != "relu2"
    return fn(x, blk.norm.weight, blk.norm.eps, (m.gate_up if swiglu else m.up_proj).weight, m.down_proj.weight, swiglu)


# block kind -> how to call its compiled step with the block's tensors
_COMPILED_CALLS: dict[str, Any] = {"mamba": _call_mamba, "mlp": _call_mlp}


def _diag(l: int, t: int, device: torch.device) -> Tensor:
    """(l, t) bool with True where query i meets its own key (column t - l + i)."""
    m = torch.zeros(l, t, dtype=torch.bool, device=device)
    m[torch.arange(l, device=device), torch.arange(t - l, t, device=device)] = True
    return m


def cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean next-token loss; labels (b, l) aligned with logits (b, l, v), shifted here."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=ignore_index)
