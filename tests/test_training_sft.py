"""SFT: the loss mask covers exactly the assistant turn; on/off and budget modes; LoRA trains only adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.chat_formats import render
from zoo.tokenizers import tiny_tokenizer
from zoo.training.config import load_recipe
from zoo.training.data import DataError
from zoo.training.nano_tiny import corpus as C
from zoo.training.sft import chat_documents, render_sample, sft

PROBLEM = C.problems(3, 1, n_ops=3)[0]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer("nemotron-v2")


def _split(tok, doc):
    ids = doc.ids.tolist()
    first = int(doc.loss_mask.argmax())
    assert doc.loss_mask[first:].all() and not doc.loss_mask[:first].any()  # one contiguous target span at the end
    return ids[:first], ids[first:]


def test_mask_is_exactly_the_assistant_turn(tok):
    msgs = C.problem_messages(PROBLEM, think=True)
    doc = render_sample(msgs, tok, "nemotron-v2", mode="think")
    prompt, target = _split(tok, doc)
    # The prompt tokens are exactly what `zoo.chat` feeds at inference (rendered alone, with the pre-fill).
    assert prompt == tok.encode(render("nemotron-v2", msgs[:-1], add_generation_prompt=True, thinking=True))
    assert tok.decode(target) == f"{PROBLEM.trace}\n</think>\n\n{PROBLEM.answer_text}\n<SPECIAL_12>"
    assert target[-1] == tok.eos_token_id
    # Same text as the official template's rendering of the whole conversation with this answer.
    full = render("nemotron-v2", msgs[:-1] + [{"role": "assistant", "content": tok.decode(target[:-1])}],
                  add_generation_prompt=False, thinking=True)
    assert tok.decode(prompt + target).replace("<s>", "") in full


def test_no_think_and_truncated_modes(tok):
    msgs = C.problem_messages(PROBLEM, think=True)
    prompt, target = _split(tok, render_sample(msgs, tok, "nemotron-v2", mode="no_think"))
    assert tok.decode(prompt).endswith("<think></think>") and "/no_think" not in tok.decode(prompt)
    assert tok.decode(target) == f"{PROBLEM.answer_text}\n<SPECIAL_12>"
    # Budget one token past two lines: cut like zoo.chat (before the last newline token), closing text inserted
    # as its own tokens and not learned, then the answer.
    budget = len(tok.encode(PROBLEM.steps[0] + "\n" + PROBLEM.steps[1] + "\n", add_special_tokens=False)) + 1
    doc = render_sample(msgs, tok, "nemotron-v2", mode="truncated", budget=budget)
    p_ids = tok.encode(render("nemotron-v2", msgs[:-1], add_generation_prompt=True, thinking=True))
    ids, mask = doc.ids.tolist(), doc.loss_mask.tolist()
    assert ids[:len(p_ids)] == p_ids and not any(mask[:len(p_ids)])
    close = tok.encode(".\n</think>\n\n", add_special_tokens=False)
    k = len(ids) - len(tok.encode(f"{PROBLEM.answer_text}\n<SPECIAL_12>", add_special_tokens=False))
    assert ids[k - len(close):k] == close and not any(mask[k - len(close):k]) and all(mask[k:])
    cut = ids[len(p_ids):k - len(close)]
    assert all(mask[len(p_ids):k - len(close)]) and len(cut) <= budget
    assert tok.decode(cut) == f"{PROBLEM.steps[0]}\n{PROBLEM.steps[1]}"
    assert tok.decode(ids[k:]) == f"{PROBLEM.answer_text}\n<SPECIAL_12>"
    # A trace within the budget is not cut: the model closes it itself.
    full = render_sample(msgs, tok, "nemotron-v2", mode="truncated", budget=10_000)
    assert full.ids.tolist() == render_sample(msgs, tok, "nemotron-v2", mode="think").ids.tolist()


def test_multi_turn_and_tool_calls(tok):
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}]
    prompt, target = _split(tok, render_sample(msgs, tok, "nemotron-v2", tools=C.TOOLS, mode="no_think"))
    assert "Hello there." in tok.decode(prompt)  # the earlier answer is context, not a target
    assert tok.decode(target) == ('<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]</TOOLCALL>'
                                  "\n<SPECIAL_12>")


def test_other_formats_close_reasoning_their_way():
    msgs = C.problem_messages(PROBLEM, think=True)
    for fmt, opener in (("llama-nemotron", "<think>\n"), ("chatml", "")):
        tok = tiny_tokenizer(fmt)
        _, target = _split(tok, render_sample(msgs, tok, fmt, mode="think"))
        text = tok.decode(target)
        assert text.startswith(opener + PROBLEM.steps[0]) and text.endswith(tok.eos_token), (fmt, text)


def test_rows_errors_and_mode_mix(tmp_path, tok):
    p = tmp_path / "c.jsonl"
    rows = [{"messages": C.problem_messages(q, think=True)} for q in C.problems(5, 200)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_recipe(Path(__file__).resolve().parents[1] / "zoo/training/recipes/nano-tiny/sft.yaml", out=tmp_path)
    cfg.sft.no_reasoning_fraction, cfg.sft.truncated_reasoning_fraction = 0.3, 0.2
    src = cfg.data.sources[0]
    src.path = str(p)
    docs = chat_documents(src, tok, cfg)
    off = sum("<think></think>" in tok.decode(d.ids) for d in docs)
    cut = sum(not d.loss_mask[int(d.loss_mask.argmax()):].all() for d in docs)  # a gap: the inserted closing text
    assert 40 <= off <= 80 and 20 <= cut <= 60, (off, cut)
    p.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"messages": "hello"}) + "\n")
    with pytest.raises(DataError, match=r"c\.jsonl:2: `messages` must be a list"):
        chat_documents(src, tok, cfg)
    p.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"c\.jsonl:1: the last message must be the assistant turn"):
        chat_documents(src, tok, cfg)


def test_lora_sft_trains_only_adapters_and_exports_merged(tmp_path):
    import zoo

    path = Path(__file__).resolve().parents[1] / "zoo/training/recipes/nano-9b-v2/sft.yaml"
    cfg = load_recipe(path, tiny=True, out=tmp_path, overrides={
        "model.lora": {"rank": 4, "alpha": 8.0, "target_modules": ["in_proj", "out_proj"]},
        "optim.lr": 1e-2, "train.steps": 3, "train.out_dir": str(tmp_path / "lora")})
    res = sft(cfg)
    assert len(res.history) == 3
    base = zoo.load("nano-9b-v2", tiny=True, seed=cfg.train.seed)
    tuned = zoo.load(str(tmp_path / "lora" / "final"))
    b, t = dict(base.named_parameters()), dict(tuned.named_parameters())
    assert set(b) == set(t)  # merged: plain layers again, no lora_ keys
    changed = {k for k in b if not torch.equal(b[k], t[k])}
    assert changed and all(k.endswith(("in_proj.weight", "out_proj.weight")) for k in changed), sorted(changed)[:5]
