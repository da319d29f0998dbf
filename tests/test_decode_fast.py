"""`LanguageModel.decode_step` (the decode fast path) == the full forward; `compile_decode` == eager."""

from __future__ import annotations

import shutil

import pytest
import torch

import zoo
from zoo.generate import generate
from zoo.language.model import LanguageModel

# nemotron_h (Mamba + NoPE attention + relu2 MLP), llama (RoPE + SwiGLU), qwen2 (q/k/v bias),
# nemotron-nas (DeciLM: linear blocks, per-block KV heads / widths)
NAMES = ["nano-9b-v2", "llama-nemotron-nano-8b", "acereason-nemotron-7b", "llama-nemotron-super-49b"]


def _tiny(name: str):
    return zoo.load(name, tiny=True, seed=0).eval()


@pytest.mark.parametrize("name", NAMES)
def test_decode_step_equals_full_forward_and_cached_forward(name: str) -> None:
    m = _tiny(name)
    ids = torch.randint(3, 500, (2, 19))
    with torch.no_grad():
        full = m(ids).logits  # (2, 19, v)
        fast, slow = m.new_cache(2), m.new_cache(2)
        m(ids[:, :11], cache=fast)
        m(ids[:, :11], cache=slow)
        for t in range(11, 19):
            got = m.decode_step(ids[:, t : t + 1], fast)  # (2, v)
            ref = m(ids[:, t : t + 1], cache=slow).logits[:, -1]
            assert got.shape == (2, m.config.vocab_size)
            # same ops as the cached forward's one-token branch: equal up to fp32 rounding (bitwise in practice)
            assert (got - ref).abs().max().item() < 1e-5
            assert (got - full[:, t]).abs().max().item() < 1e-4
    assert fast.seq_len == slow.seq_len == 19
    assert torch.equal(fast.next_position, slow.next_position)


def test_decode_step_with_padded_cache_falls_back_to_forward() -> None:
    m = _tiny("nano-9b-v2")
    a, b = torch.randint(3, 500, (1, 12)), torch.randint(3, 500, (1, 7))
    ids = torch.zeros(2, 12, dtype=torch.long)
    ids[0], ids[1, 5:] = a[0], b[0]
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    nxt = torch.randint(3, 500, (2, 3))
    with torch.no_grad():
        cache = m.new_cache(2)
        m(ids, attention_mask=mask, cache=cache)
        got = torch.stack([m.decode_step(nxt[:, t : t + 1], cache) for t in range(3)], dim=1)
        ref_a = m(torch.cat([a, nxt[:1]], dim=1)).logits[0, -3:]
        ref_b = m(torch.cat([b, nxt[1:]], dim=1)).logits[0, -3:]
    assert (got[0] - ref_a).abs().max().item() < 1e-4
    assert (got[1] - ref_b).abs().max().item() < 1e-4


def test_subclass_forward_is_honoured() -> None:
    m = _tiny("nano-9b-v2")
    calls = []

    class Spy(type(m)):
        def forward(self, *args, **kwargs):
            calls.append(1)
            return super().forward(*args, **kwargs)

    m.__class__ = Spy
    ids = torch.randint(3, 500, (1, 6))
    with torch.no_grad():
        cache = m.new_cache(1)
        m(ids, cache=cache)
        m.decode_step(ids[:, -1:], cache)
    assert len(calls) == 2  # the decode step went through the subclass's forward


def test_block_hooks_are_honoured() -> None:
    m = _tiny("nano-9b-v2")
    seen = []
    handle = m.blocks[1].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    ids = torch.randint(3, 500, (1, 6))
    try:
        with torch.no_grad():
            cache = m.new_cache(1)
            m(ids[:, :5], cache=cache)
            got = m.decode_step(ids[:, 5:], cache)
            full = m(ids).logits[:, -1]
    finally:
        handle.remove()
    assert len(seen) == 3 and seen[1] == (1, 1, m.config.hidden_size)  # the decode step ran the hooked forward
    assert (got - full).abs().max().item() < 1e-4


def test_compile_decode_rejects_hooks() -> None:
    m = _tiny("nano-9b-v2")
    handle = m.blocks[0].mixer.in_proj.register_forward_pre_hook(lambda mod, inp: None)
    try:
        with pytest.raises(ValueError, match="hooks"):
            m.compile_decode()
    finally:
        handle.remove()


def test_neg_A_cache_follows_parameter_updates() -> None:
    m = _tiny("nano-9b-v2")
    mixer = next(b.mixer for b in m.blocks if b.kind == "mamba")
    with torch.no_grad():
        first = mixer.neg_A()
        assert mixer.neg_A() is first  # reused while A_log is unchanged
        mixer.A_log.add_(0.5)  # in place: version counter moves
        assert torch.allclose(mixer.neg_A(), -torch.exp(mixer.A_log.float()))
    # with grad on (training) it is recomputed every call, so gradients reach A_log
    assert mixer.neg_A().requires_grad


def test_decode_step_on_a_model_built_in_inference_mode() -> None:
    # parameters created under inference_mode are inference tensors (no version counter): -exp(A_log) is then
    # recomputed every call rather than cached
    with torch.inference_mode():
        m = _tiny("nano-9b-v2")
        ids = torch.randint(3, 500, (1, 8))
        full = m(ids).logits[:, -1]
        cache = m.new_cache(1)
        m(ids[:, :7], cache=cache)
        got = m.decode_step(ids[:, 7:], cache)
    assert (got - full).abs().max().item() < 1e-4


def test_generate_uses_decode_step_and_matches_forward_loop() -> None:
    m = _tiny("nano-9b-v2")
    prompt = torch.randint(3, 500, (1, 9))
    n = 6
    steps = []
    original = LanguageModel.decode_step

    def spy(self, input_ids, cache):
        steps.append(1)
        return original(self, input_ids, cache)

    ids = prompt.clone()
    with torch.no_grad():
        for _ in range(n):
            ids = torch.cat([ids, m(ids).logits[:, -1:].argmax(-1)], dim=1)
    try:
        LanguageModel.decode_step = spy
        got = generate(m, prompt, max_new_tokens=n, eos_token_id=[])
    finally:
        LanguageModel.decode_step = original
    assert got == [ids[0, 9:].tolist()]
    assert len(steps) == n - 1


def _compile_works() -> bool:
    if shutil.which("c++") is None and shutil.which("g++") is None and shutil.which("cc") is None:
        return False
    try:
        import torch._dynamo  # noqa: F401
        import torch._inductor  # noqa: F401
    except Exception:  # pragma: no cover - platform without inductor
        return False
    return True


@pytest.mark.skipif(not _compile_works(), reason="torch.compile (inductor + a C++ compiler) unavailable")
@pytest.mark.parametrize("name", ["nano-9b-v2", "llama-nemotron-nano-8b"])
def test_compiled_decode_matches_eager(name: str) -> None:
    # ~5-30 s each on the 2-core dev VM (small graphs: the Mamba block step and the relu2 / SwiGLU MLP block step)
    torch._dynamo.reset()
    m = _tiny(name)
    ids = torch.randint(3, 500, (1, 10))
    with torch.no_grad():
        eager_cache = m.new_cache(1)
        m(ids[:, :6], cache=eager_cache)
        eager = [m.decode_step(ids[:, t : t + 1], eager_cache) for t in range(6, 10)]
        m.compile_decode()
        cache = m.new_cache(1)
        m(ids[:, :6], cache=cache)
        compiled = [m.decode_step(ids[:, t : t + 1], cache) for t in range(6, 10)]
        m.uncompile_decode()
    for a, b in zip(eager, compiled):
        assert (a - b).abs().max().item() < 1e-4  # inductor fuses and reorders fp32 ops
    for mine, ref in zip(cache.layers, eager_cache.layers):
        if hasattr(ref, "ssm"):
            assert torch.allclose(mine.ssm, ref.ssm, atol=1e-5)
            assert torch.allclose(mine.conv, ref.conv, atol=1e-6)
