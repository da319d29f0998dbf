"""The nano-tiny recipe: corpus -> tokenizer -> pretrain -> SFT (thinking on/off, budgets) -> evaluate -> ship.

`zoo train nano-tiny all` runs `run_all`: every stage YAML under `recipes/nano-tiny/` in order (`pretrain`, `sft`),
each preceded by `prepare` (its `prepare:` hook), which writes the corpus and the tokenizer into the run root once:

    OUT/corpus/pretrain.jsonl   {"text"}: problems with worked solutions + tool-call requests, plain text
    OUT/corpus/sft.jsonl        {"messages", "tools"?}: chat samples (nemotron-v2), reasoning in reasoning_content
    OUT/corpus/heldout.jsonl    {"question", "answer", "n_ops"} / {"request", "call"}: never trained on
    OUT/tokenizer/              byte-level BPE with the real Nemotron-v2 special tokens, digits split one by one

Sizes come from the recipe YAML (`data.sources` + `train.steps`); the split sizes here are fixed so every run
draws the same corpus.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from zoo.training.nano_tiny import corpus as C

N_TRAIN_PROBLEMS = 60_000
N_TRAIN_TOOLS = 6_000
N_SFT_PROBLEMS = 16_000  # SFT needs far fewer samples than pretraining: 400 steps see ~13k chats
N_SFT_TOOLS = 1_000
N_HELDOUT_PROBLEMS = 400  # 100 per number of operations
N_HELDOUT_TOOLS = 100
SEED_TRAIN, SEED_HELDOUT = 1234, 98765
VOCAB_SIZE = 1024


def write_corpus(root: Path) -> None:
    """Write the three corpus files under `root/corpus` (atomically: temp name, then rename)."""
    d = root / "corpus"
    d.mkdir(parents=True, exist_ok=True)
    train = C.problems(SEED_TRAIN, N_TRAIN_PROBLEMS)
    tools = C.tool_tasks(SEED_TRAIN + 1, N_TRAIN_TOOLS)
    seen = {p.question for p in train}
    held = []
    for k in (1, 2, 3, 4):
        held += C.problems(SEED_HELDOUT + k, N_HELDOUT_PROBLEMS // 4, exclude=seen, n_ops=k)
    held_tools = C.tool_tasks(SEED_HELDOUT, N_HELDOUT_TOOLS)
    rng = random.Random(SEED_TRAIN)
    pre = [{"text": C.pretrain_text(p)} for p in train] + [{"text": C.tool_pretrain_text(t)} for t in tools]
    rng.shuffle(pre)
    sft = [{"messages": C.problem_messages(p, think=True)} for p in train[:N_SFT_PROBLEMS]]
    sft += [{"messages": C.tool_messages(t, think=True), "tools": t.tools} for t in tools[:N_SFT_TOOLS]]
    for i, r in enumerate(sft):
        if i % 2:  # half without the system prompt: `zoo chat nano-tiny "..."` sends none
            r["messages"] = r["messages"][1:]
    rng.shuffle(sft)
    heldout = [{"question": p.question, "answer": p.answer, "n_ops": p.n_ops, "trace": p.trace} for p in held]
    heldout += [{"request": t.request, "call": t.call} for t in held_tools]
    for name, rows in (("pretrain", pre), ("sft", sft), ("heldout", heldout)):
        tmp = d / f".{name}.jsonl.tmp"
        with open(tmp, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        tmp.replace(d / f"{name}.jsonl")


def build_tokenizer(root: Path) -> Any:
    """Train the nano-tiny tokenizer on the corpus (plain texts + rendered chat samples) and save it."""
    from tokenizers import pre_tokenizers

    from zoo.chat_formats import render
    from zoo.tokenizers import train_bpe_tokenizer

    texts = [json.loads(line)["text"] for line in open(root / "corpus" / "pretrain.jsonl")][:20_000]
    rows = [json.loads(line) for line in open(root / "corpus" / "sft.jsonl")][:4_000]
    for r in rows:
        msgs = r["messages"]
        if msgs[0]["role"] != "system":  # the system prompt's words belong in the vocabulary either way
            msgs = [{"role": "system", "content": C.SYSTEM}, *msgs]
        texts.append(render("nemotron-v2", msgs, tools=r.get("tools"), add_generation_prompt=False))
    tok = train_bpe_tokenizer(texts, vocab_size=VOCAB_SIZE, chat_format="nemotron-v2")
    # One token per digit, as in the released Nemotron tokenizers: sums become digit-wise rules, not a table.
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     backend.pre_tokenizer])
    out = root / "tokenizer"
    tmp = root / ".tokenizer.tmp"
    tok.save_pretrained(str(tmp))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.replace(out)
    return tok


def prepare(cfg: Any, out_root: Path | None) -> None:
    """The recipes' `prepare:` hook: corpus and tokenizer under the run root, made once."""
    if out_root is None:
        raise ValueError("the nano-tiny recipe needs a run root (zoo train passes --out)")
    root = Path(out_root)
    if not (root / "corpus" / "heldout.jsonl").exists():
        print(f"nano-tiny: writing the synthetic corpus to {root / 'corpus'}", file=sys.stderr)
        write_corpus(root)
    if not (root / "tokenizer" / "tokenizer.json").exists():
        print(f"nano-tiny: training the tokenizer into {root / 'tokenizer'}", file=sys.stderr)
        build_tokenizer(root)


def heldout(root: Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Held-out (problems, tool tasks): read from a run's corpus, or regenerated from the fixed seeds."""
    if root is not None and (root / "corpus" / "heldout.jsonl").exists():
        rows = [json.loads(line) for line in open(root / "corpus" / "heldout.jsonl")]
    else:
        train = {p.question for p in C.problems(SEED_TRAIN, N_TRAIN_PROBLEMS)}
        rows = []
        for k in (1, 2, 3, 4):
            rows += [{"question": p.question, "answer": p.answer, "n_ops": p.n_ops, "trace": p.trace}
                     for p in C.problems(SEED_HELDOUT + k, N_HELDOUT_PROBLEMS // 4, exclude=train, n_ops=k)]
        rows += [{"request": t.request, "call": t.call} for t in C.tool_tasks(SEED_HELDOUT, N_HELDOUT_TOOLS)]
    return [r for r in rows if "question" in r], [r for r in rows if "request" in r]


def finish(root: Path, tiny: bool) -> dict[str, Any]:
    """The `all` pipeline's last step: evaluate `root/sft/final` on the held-out split, write `root/results.json`."""
    import zoo
    from zoo.training.nano_tiny.evaluate import evaluate, summary

    model = zoo.load(str(Path(root) / "sft" / "final"))
    problems, tools = heldout(Path(root))
    if tiny:  # smoke profile: a handful of problems, short generations
        problems, tools = problems[:: len(problems) // 8], tools[:4]
    res = summary(evaluate(model, problems, tools, max_new_think=16 if tiny else 160,
                           max_new_plain=8 if tiny else 24))
    (Path(root) / "results.json").write_text(json.dumps(res, indent=1))
    for mode in ("think", "no_think"):
        r = res[mode]
        print(f"nano-tiny {mode:8s}: accuracy {r['accuracy']:.3f} (single-step {r['single_step']:.3f}, multi-step "
              f"{r['multi_step']:.3f}) over {r['n']} held-out problems, {r['tokens_per_s']:.0f} tokens/s",
              file=sys.stderr)
    if "tools" in res:
        print(f"nano-tiny tools   : exact calls {res['tools']['accuracy']:.3f} over {res['tools']['n']}", file=sys.stderr)
    return res
