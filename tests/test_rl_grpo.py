"""A tiny GRPO run on the CPU: rollouts, rewards, finite loss, checkpoint resume == uninterrupted run, probe,
prompt pool rules, and every shipped grpo.yaml (full and tiny) validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.errors import ConfigError
from zoo.training.config import RECIPES_DIR
from zoo.training.grpo import grpo, load_grpo_recipe
from zoo.training.rewards import register_reward
from zoo.training.rl import rollout as R
from zoo.training.rl.config import StageConfig
from zoo.training.rl.rules import PromptError, PromptPool, read_prompts, stage_at

HF = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "vocab_size": 512, "hidden_size": 64,
    "hybrid_override_pattern": "M*-", "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "intermediate_size": 128, "mlp_hidden_act": "relu2", "mamba_num_heads": 4, "mamba_head_dim": 16,
    "ssm_state_size": 16, "n_groups": 1, "conv_kernel": 4, "chunk_size": 16, "use_conv_bias": True,
    "layer_norm_epsilon": 1e-5, "max_position_embeddings": 512, "tie_word_embeddings": False,
    "attention_bias": False, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 5, "torch_dtype": "float32",
}


def _even_length(response: str, row: dict) -> float:
    # A reward a random model earns half the time: enough signal to exercise advantages and the update.
    return 1.0 if (len(response) % 2 == 0) else 0.0


register_reward("test_even_length", _even_length)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from zoo.loading import build_model
    from zoo.tokenizers import tiny_tokenizer

    d = tmp_path_factory.mktemp("policy")
    m = build_model(HF, source="test", dtype=torch.float32, device="cpu", seed=0)
    m.tokenizer, m.chat_format, m.entry, m.lineage = tiny_tokenizer("nemotron-v2"), "nemotron-v2", None, None
    m.save_pretrained(d)
    return d


def _recipe(tmp: Path, model_dir: Path, **over) -> Path:
    prompts = tmp / "prompts.jsonl"
    qs = ["What is 2 + 2?", "Add 3 and 4.", "Name a colour.", "Say hi.", "Count to 3.", "What is 9 - 1?"]
    prompts.write_text("".join(json.dumps({"question": q, "answer": "4"}) + "\n" for q in qs))
    recipe = {
        "stage": "grpo", "description": "test",
        "model": {"path": str(model_dir)},
        "prompts": [{"name": "p", "path": "prompts.jsonl", "reward": "test_even_length", "thinking": False},
                    {"name": "m", "path": "prompts.jsonl", "reward": "math"}],
        "rollout": {"prompts_per_step": 2, "group_size": 4, "temperature": 1.0, "max_new_tokens": 6,
                    "batch_size": 8},
        "algo": {"kl_coef": 0.01, "ppo_epochs": 2, "mini_batches": 1, "overlong_filter": False},
        "stages": [{"name": "a", "steps": 2, "sources": ["p"]}, {"name": "b", "steps": 1, "sources": ["p", "m"],
                                                                 "max_new_tokens": 4}],
        "optim": {"lr": 1e-3, "min_lr": 1e-3, "weight_decay": 0.0},
        "schedule": {"kind": "constant"},
        "train": {"steps": 3, "micro_batch_size": 4, "precision": "fp32", "out_dir": str(tmp / "run"),
                  "log_every": 1, "ckpt_every": 1, "keep_checkpoints": 5, "seed": 0},
    }
    for k, v in over.items():
        recipe[k] = v
    import yaml

    path = tmp / "grpo.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_tiny_run_rewards_loss_and_resume(tmp_path, model_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    res = grpo(load_grpo_recipe(_recipe(a, model_dir)))
    h = res.history
    assert [r["step"] for r in h] == [1, 2, 3] and [r["stage"] for r in h] == ["a", "a", "b"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in h if "loss" in r)
    assert any(r["updates"] == 2 for r in h)  # ppo_epochs=2: two optimizer steps on a non-empty batch
    assert all(r["grad_norm"] > 0 for r in h if r["updates"])
    assert all(0 <= r["reward"] <= 1 and r["entropy_T"] > 0 for r in h)
    assert h[2]["max_new_tokens"] == 4 and h[2]["response_len"] <= 4
    assert "kl" in h[0] and h[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # first update: policy == reference
    assert (res.final / "config.json").is_file() and (res.final / "tokenizer.json").is_file()
    # Kill after 2 steps, resume: the final weights equal the uninterrupted run's.
    cfg_b = load_grpo_recipe(_recipe(b, model_dir))
    assert grpo(cfg_b, stop_after=2).final is None
    res_b = grpo(load_grpo_recipe(_recipe(b, model_dir)), resume=True)
    assert [r["step"] for r in res_b.history] == [3]
    ca = sorted((res.out_dir / "checkpoints").iterdir())[-1]
    cb = sorted((res_b.out_dir / "checkpoints").iterdir())[-1]
    wa, wb = load_file(str(ca / "model.safetensors")), load_file(str(cb / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert h[2]["reward"] == pytest.approx(res_b.history[0]["reward"])


def test_rollout_truncation_and_probe(model_dir):
    import zoo

    m = zoo.load(str(model_dir), dtype=torch.float32)
    prompt = R.render_prompt(m, {"question": "hi"}, thinking=True)
    assert R.think_prefill(prompt).startswith("<think>")
    roll = R.sample(m, [prompt, prompt], group_size=3, max_new_tokens=5, temperature=1.0, seed=1)
    assert len(roll.response_ids) == 6 and all(1 <= len(r) <= 5 for r in roll.response_ids)
    ends = R.end_token_ids(m)
    for r, trunc, text in zip(roll.response_ids, roll.truncated, roll.texts):
        assert trunc == (len(r) == 5 and r[-1] not in ends)
        assert text.startswith("<think>")
    again = R.sample(m, [prompt, prompt], group_size=3, max_new_tokens=5, temperature=1.0, seed=1)
    assert again.response_ids == roll.response_ids  # seeded
    best, hs = R.pick_temperature(m, [prompt], target=0.3, candidates=[0.5, 1.0, 2.0], max_new_tokens=4)
    assert best == min(hs, key=lambda t: abs(hs[t] - 0.3))
    assert hs[0.5] < hs[2.0]  # hotter sampling, flatter distribution


def test_prompt_pool_epochs_removal_and_state():
    rows = [{"id": str(i)} for i in range(4)]
    pool = PromptPool(rows, seed=0, remove_solved=True)
    first = [r["id"] for r in pool.next(4)]
    assert sorted(first) == ["0", "1", "2", "3"]
    pool.record(first, [True, False, True, False])
    state = pool.state_dict()
    nxt = [r["id"] for r in pool.next(2)]  # epoch boundary: the two solved prompts leave
    assert pool.size == 2 and set(nxt) <= {first[1], first[3]}
    clone = PromptPool(rows, seed=0, remove_solved=True)
    clone.load_state_dict(state)
    assert [r["id"] for r in clone.next(2)] == nxt
    keep = PromptPool(rows, seed=0, remove_solved=False)
    keep.record([r["id"] for r in keep.next(4)], [True] * 4)
    keep.next(1)
    assert keep.size == 4
    assert stage_at([StageConfig("x", 2), StageConfig("y", 3)], 2)[1].name == "y"


def test_bad_prompt_rows_and_recipes_name_the_place(tmp_path, model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"answer": 3}\n')
    with pytest.raises(PromptError, match="bad.jsonl:2"):
        read_prompts(bad, "x")
    bad.write_text('{"question": "ok"}\nnot json\n')
    with pytest.raises(PromptError, match="bad.jsonl:2: invalid JSON"):
        read_prompts(bad, "x")
    path = _recipe(tmp_path, model_dir)
    text = path.read_text().replace("steps: 3\n", "steps: 4\n")
    path.write_text(text)
    with pytest.raises(ConfigError, match="grpo.yaml:.*sum of the stages"):
        load_grpo_recipe(path)


def test_reward_error_names_the_row(tmp_path, model_dir):
    path = _recipe(tmp_path, model_dir)
    (tmp_path / "prompts.jsonl").write_text('{"question": "no answer here"}\n' * 3)
    cfg = load_grpo_recipe(path)
    cfg.stages[0].sources = ["m"]
    with pytest.raises(PromptError, match=r"prompts.jsonl:\d: missing field 'answer'"):
        grpo(cfg)


@pytest.mark.parametrize("recipe", sorted(RECIPES_DIR.glob("*/grpo.yaml")), ids=lambda p: p.parent.name)
@pytest.mark.parametrize("tiny", [False, True])
def test_shipped_grpo_recipes_validate(recipe, tiny):
    text = recipe.read_text()
    assert text.startswith("#") and "Launch:" in text  # header: purpose, prerequisites, launch, override
    cfg = load_grpo_recipe(recipe, tiny=tiny, out="/tmp/x")
    assert cfg.stage == "grpo" and sum(s.steps for s in cfg.stages) == cfg.train.steps


def _has_a(response: str, row: dict) -> float:
    return 1.0 if "a" in response.lower() else 0.0


register_reward("test_has_a", _has_a)


def test_grpo_learns_a_toy_reward(tmp_path, model_dir):
    # Reward: the 4-token response contains the letter "a" (about half of random responses do). On-policy GRPO
    # must push the policy towards it: the sign and scale of the whole update path, end to end.
    import yaml

    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"question": f"q{i}"}) + "\n" for i in range(8)))
    rec = {"stage": "grpo", "model": {"path": str(model_dir)},
           "prompts": [{"name": "p", "path": "p.jsonl", "reward": "test_has_a", "thinking": False}],
           "rollout": {"prompts_per_step": 4, "group_size": 8, "max_new_tokens": 4, "batch_size": 32},
           "optim": {"lr": 3e-2, "min_lr": 3e-2, "weight_decay": 0.0},
           "train": {"steps": 16, "micro_batch_size": 32, "precision": "fp32", "out_dir": str(tmp_path / "run"),
                     "log_every": 1, "ckpt_every": 0}}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(rec))
    h = grpo(load_grpo_recipe(tmp_path / "g.yaml")).history
    first, last = [r["reward"] for r in h[:3]], [r["reward"] for r in h[-4:]]
    assert sum(first) / 3 < 0.7 and sum(last) / 4 > 0.9, [round(r["reward"], 2) for r in h]
    assert h[-1]["entropy_T"] < h[0]["entropy_T"] - 1.0  # the policy sharpened
