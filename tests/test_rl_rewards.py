"""Reward adapters over the zoo.eval verifiers, and the Llama-Nemotron think-format reward."""

from __future__ import annotations

import pytest

from zoo.training.rewards import RewardError, get_reward, register_reward
from zoo.training.rewards.think_format import score as think_score


def test_math_reward():
    r = get_reward("math")
    assert r("<think>\n24 + 2 = 26\n</think>\nThe answer is 26.", {"answer": 26}) == 1.0
    assert r("<think>The answer is 26.</think>\nThe answer is 25.", {"answer": "26"}) == 0.0  # after </think> only
    assert r("so \\boxed{\\frac{1}{2}}", {"answer": "0.5"}) == 1.0
    with pytest.raises(RewardError, match="'answer'"):
        r("The answer is 1.", {})


def test_toolcall_reward_tool_n1_rule():
    r = get_reward("toolcall")
    gold = [{"name": "get_time", "arguments": {"city": "Oslo"}}]
    good = '<think>time: get_time</think><tool_call>[{"name": "get_time", "arguments": {"city": "Oslo"}}]</tool_call>'
    assert r(good, {"answer": gold}) == 1.0
    assert r(good.replace("<think>time: get_time</think>", ""), {"answer": gold}) == 0.0  # format: think needed
    assert r(good, {"answer": gold, "require_think": True, "chat_format": "chatml"}) == 1.0
    wrong = good.replace("Oslo", "Lima")
    assert r(wrong, {"answer": gold}) == 0.0
    # nemotron-v2 markup with the <think></think> pre-fill put back in front (nano-tiny thinking off)
    nem = '<think></think><TOOLCALL>[{"name": "get_time", "arguments": {"city": "Oslo"}}]</TOOLCALL>'
    assert r(nem, {"answer": gold[0], "chat_format": "nemotron-v2"}) == 1.0


def test_crossthink_reward_accuracy_and_format():
    r = get_reward("crossthink")
    assert r("<think>B fits</think> \\boxed{B}", {"task": "mcq", "answer": "B"}) == 1.0
    assert r("\\boxed{B}", {"task": "mcq", "answer": "B"}) == 0.0  # R_format fails without reasoning
    assert r("<think>x</think> \\boxed{The Nile}", {"task": "open", "answer": "the nile"}) == 1.0
    assert r("<think>x</think> \\boxed{4}", {"task": "math", "answer": "4"}) == 1.0
    assert r("<think>x</think> 4", {"task": "math", "answer": "4"}) == 0.0
    with pytest.raises(RewardError, match="task"):
        r("x", {"task": "essay", "answer": "a"})


def test_think_format_reward():
    assert think_score("<think>\nsteps\n</think>\nThe answer is 3.", True) == 1.0
    assert think_score("<think></think>The answer is 3.", True) == 0.0  # empty reasoning with thinking on
    assert think_score("<think>\nsteps\n</think>", True) == 0.0  # no answer after the reasoning
    assert think_score("The answer is 3.", False) == 1.0
    assert think_score("<think></think>The answer is 3.", False) == 1.0
    assert think_score("<think>steps</think>The answer is 3.", False) == 0.0
    assert think_score("<think>steps</think></think>x", True) == 0.0  # stray tag
    assert get_reward("think_format")("The answer is 3.", {"thinking": False}) == 1.0


def test_code_reward_runs_tests_in_the_sandbox():
    r = get_reward("code")
    resp = "```python\nprint(int(input()) * 2)\n```"
    assert r(resp, {"tests": [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]}) == 1.0
    assert r(resp, {"tests": [{"input": "3\n", "output": "7\n"}]}) == 0.0


def test_custom_and_unknown_rewards():
    register_reward("always_one", lambda response, row: 1.0)
    assert get_reward("always_one")("x", {}) == 1.0
    assert get_reward("zoo.training.rewards.math:reward") is get_reward("math")
    with pytest.raises(RewardError, match="unknown reward"):
        get_reward("nope")
    with pytest.raises(RewardError, match="cannot import"):
        get_reward("zoo.nope:fn")
