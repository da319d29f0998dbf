"""zoo.tokenizers: tiny real BPE tokenizers with each chat format's atomic special tokens."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from zoo.errors import ZooError
from zoo.tokenizers import CHAT_FORMATS, special_tokens_for, tiny_tokenizer, train_bpe_tokenizer


@pytest.mark.parametrize("fmt", CHAT_FORMATS)
def test_markers_are_single_tokens_and_roundtrip(fmt: str, tmp_path) -> None:
    tok = tiny_tokenizer(fmt)
    assert len(tok) == 512
    for marker in special_tokens_for(fmt):
        ids = tok(marker, add_special_tokens=False).input_ids
        assert len(ids) == 1, (marker, ids)
        assert tok.convert_ids_to_tokens(ids[0]) == marker
    text = "".join(special_tokens_for(fmt)) + "Hello world, 2x + 3 = 7 ünïcødé 🙂"
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text  # byte-level: lossless, no inserted spaces
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text).input_ids == tok(text).input_ids
    assert (again.eos_token, again.pad_token, again.bos_token) == (tok.eos_token, tok.pad_token, tok.bos_token)
    assert again.padding_side == "left"
    assert again.chat_template is None  # the built-in renderer serves tiny models


def test_format_specific_tokens() -> None:
    nem = tiny_tokenizer("nemotron-v2")
    assert nem.eos_token == "<SPECIAL_12>" and nem.bos_token == "<s>"
    assert nem.convert_tokens_to_ids(["<unk>", "<s>", "</s>"]) == [0, 1, 2]  # Tekken layout: pad 0, bos 1
    assert nem("hi").input_ids[0] == nem.bos_token_id
    # <think> survives skip_special_tokens (reasoning parsing needs it); turn markers do not.
    ids = nem("<SPECIAL_11>Assistant\n<think>a</think>b<SPECIAL_12>", add_special_tokens=False).input_ids
    assert nem.decode(ids, skip_special_tokens=True) == "Assistant\n<think>a</think>b"
    # Llama-3 keeps <think>/<TOOLCALL> as plain text; ChatML has no bos and ends turns with <|im_end|>.
    llama = tiny_tokenizer("llama-nemotron")
    assert len(llama("<think>", add_special_tokens=False).input_ids) > 1
    assert llama.eos_token == "<|eot_id|>"
    chatml = tiny_tokenizer("chatml")
    assert chatml.bos_token is None and chatml.eos_token == "<|im_end|>"
    assert chatml("hi").input_ids == chatml("hi", add_special_tokens=False).input_ids
    assert "<｜User｜>" in special_tokens_for("deepseek-r1")


def test_extra_special_tokens_and_errors() -> None:
    tok = train_bpe_tokenizer(
        ["a b c"] * 3, vocab_size=300, chat_format="chatml", extra_special_tokens=["<IMG_CONTEXT>"]
    )
    assert len(tok("<IMG_CONTEXT><IMG_CONTEXT>").input_ids) == 2
    with pytest.raises(ZooError, match="unknown chat format 'nope'"):
        special_tokens_for("nope")
    with pytest.raises(ZooError, match="vocab_size 100"):
        train_bpe_tokenizer(["x"], vocab_size=100, chat_format="nemotron-v2")
