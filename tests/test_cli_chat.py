"""`zoo chat` and `zoo generate` through the CLI entry point, on a tiny checkpoint directory built here."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo.cli import main
from zoo.generate import generate


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "nano-tiny"
    zoo.load("nano-9b-v2", tiny=True, seed=0).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(ckpt: Path):
    return zoo.load(str(ckpt)).eval()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_chat_one_prompt_streams_the_reply(ckpt, model, capsys) -> None:
    rc, out, _ = _run(capsys, "chat", str(ckpt), "Hello there", "--max-new-tokens", "6")
    assert rc == 0
    assert out == model.chat("Hello there", max_new_tokens=6).raw + "\n"
    # options may come before or after the prompt; --no-think and --budget reach chat()
    rc, out, _ = _run(
        capsys, "chat", "--no-think", str(ckpt), "--budget", "3", "Hello", "there", "--max-new-tokens", "5"
    )
    assert rc == 0 and out == model.chat("Hello there", thinking=False, thinking_budget=3, max_new_tokens=5).raw + "\n"
    rc, out, _ = _run(capsys, "chat", str(ckpt), "Hi", "--think", "--budget", "2", "--max-new-tokens", "6")
    expected = model.chat("Hi", thinking=True, thinking_budget=2, max_new_tokens=6)
    assert rc == 0 and out == expected.raw + "\n" and ".\n</think>\n\n" in out


def test_chat_tools_file(ckpt, model, capsys, tmp_path) -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    good = tmp_path / "tools.json"
    good.write_text(json.dumps({"tools": tools}))
    rc, out, _ = _run(capsys, "chat", str(ckpt), "Time?", "--tools", str(good), "--max-new-tokens", "4")
    assert rc == 0 and out == model.chat("Time?", tools=tools, max_new_tokens=4).raw + "\n"
    for content, message in [
        ("[{", "not valid JSON (line 1"),
        ('{"a": 1}', "expected a JSON list of tool schemas"),
        ('[{"function": {"parameters": {}}}]', 'tool 0 has no "name"'),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        rc, out, err = _run(capsys, "chat", str(ckpt), "Hi", "--tools", str(bad))
        assert rc == 2 and out == "" and message in err and str(bad) in err and err.count("\n") == 1
    rc, _, err = _run(capsys, "chat", str(ckpt), "Hi", "--tools", str(tmp_path / "missing.json"))
    assert rc == 2 and "tools file not found" in err


def test_chat_interactive_session(ckpt, model, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\nMore\n/reset\nHello\n/exit\nnever read\n"))
    rc, out, _ = _run(capsys, "chat", str(ckpt), "--max-new-tokens", "4", "--no-think")
    assert rc == 0
    first = model.chat("Hello", thinking=False, max_new_tokens=4)
    history = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": first.raw},
        {"role": "user", "content": "More"},
    ]
    second = model.chat(history, thinking=False, max_new_tokens=4)
    assert out == f"{first.raw}\n{second.raw}\n{first.raw}\n"  # /reset starts the conversation again


def test_generate_and_errors(ckpt, model, capsys) -> None:
    rc, out, _ = _run(capsys, "generate", str(ckpt), "--max-new-tokens", "5", "The capital")
    ids = generate(model, model.tokenizer("The capital").input_ids, max_new_tokens=5)[0]
    eos = model.tokenizer.eos_token_id
    assert rc == 0 and out == model.tokenizer.decode([i for i in ids if i != eos]) + "\n"
    rc, out, err = _run(capsys, "chat", "nano-9b-v3", "Hi")
    assert rc == 2 and out == "" and err.startswith("zoo: error: 'nano-9b-v3' is neither") and err.count("\n") == 1
    rc, _, err = _run(capsys, "chat", str(ckpt), "Hi", "--budget", "-1")
    assert rc == 2 and "--budget must be >= 0" in err


def test_console_script_entry_point(ckpt) -> None:
    exe = Path(sys.executable).with_name("zoo")
    assert exe.exists(), "the `zoo` console script is installed with the package"
    proc = subprocess.run(
        [str(exe), "chat", str(ckpt), "Hi", "--max-new-tokens", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("\n") and len(proc.stdout) > 1


def test_info_prints_the_memory_plan(capsys) -> None:
    rc, out, _ = _run(capsys, "info", "nano-9b-v2")
    assert rc == 0 and "bf16, batch 1, 131072 tokens" in out
    assert "total       18.69 GiB" in out and "A10G budget 19.66 GiB: fits up to 131072 tokens" in out
    rc, out, _ = _run(capsys, "info", "nano-12b-v2-base")
    assert rc == 0 and "A10G budget 19.66 GiB: does not fit" in out
