"""Fine-tune a zoo model on your own chat data (LoRA or full), on a CPU at tiny scale.

Purpose: the smallest complete SFT you can adapt: a JSONL file of conversations in, a fine-tuned HF-format model
  out (LoRA adapters merged), loss on the assistant's final turn only, thinking on/off mix as in Nano-v2.
Prerequisites: `pip install nemotron-zoo[train]`. Each line of the data file is
  {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...], "tools": [...]?}
  where the last message is the assistant reply to learn; it may carry "reasoning_content" (its thinking trace)
  and "tool_calls" ([{"name", "arguments"}]).
Launch:   python examples/finetune_sft.py --data my_chats.jsonl --model nano-tiny --lora --steps 50
          python examples/finetune_sft.py                       (the bundled sample chats, nano-tiny, 20 steps)
Result:   OUT/final is a model directory: `zoo chat OUT/final`, `zoo.load("OUT/final")`, or transformers.
Full scale: the same `RecipeConfig` as YAML, e.g. zoo/training/recipes/nano-9b-v2/sft.yaml, with torchrun.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.training.config import (
    DataConfig,
    LoRAConfig,
    ModelConfig,
    OptimConfig,
    RecipeConfig,
    ScheduleConfig,
    SFTConfig,
    SourceConfig,
    TrainConfig,
)

SAMPLE = Path(__file__).resolve().parents[1] / "zoo" / "training" / "recipes" / "_samples" / "chat.jsonl"


def build_config(args: argparse.Namespace) -> RecipeConfig:
    """The whole fine-tuning run as one typed config (the same structure a recipe YAML serialises)."""
    local = Path(args.model).is_dir()
    return RecipeConfig(
        stage="sft",
        description="examples/finetune_sft.py",
        model=ModelConfig(
            path=args.model if local else None,
            entry=None if local else args.model,
            tiny=args.tiny,
            lora=LoRAConfig(rank=args.lora_rank, alpha=2.0 * args.lora_rank) if args.lora else None,
        ),
        data=DataConfig(sources=[SourceConfig(name="chats", path=str(args.data), field="messages")],
                        seq_len=args.seq_len, pack=True),
        # LoRA takes a larger learning rate than full fine-tuning: only the small adapters move.
        optim=OptimConfig(lr=args.lr if args.lr else (2e-3 if args.lora else 3e-4), min_lr=1e-5),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=max(1, args.steps // 10)),
        sft=SFTConfig(chat_format=args.chat_format, no_reasoning_fraction=0.1),
        train=TrainConfig(steps=args.steps, micro_batch_size=args.batch, precision="fp32", out_dir=str(args.out),
                          log_every=1, ckpt_every=0, seed=0),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SAMPLE, help="JSONL of chats (default: bundled samples)")
    p.add_argument("--model", default="nano-tiny", help="zoo entry name or local HF directory")
    p.add_argument("--tiny", action="store_true", help="the entry's tiny random-init variant (smoke tests)")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of every weight")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--chat-format", default="nemotron-v2")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4, help="packed rows per step")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/finetune_sft"))
    args = p.parse_args(argv)

    from zoo.training.sft import sft

    res = sft(build_config(args))
    first, last = res.history[0]["loss"], res.history[-1]["loss"]
    print(f"loss {first:.3f} -> {last:.3f} over {len(res.history)} steps; model written to {args.out / 'final'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
