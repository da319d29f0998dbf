"""Code reward: correct programs score 1, wrong or hostile ones 0; both test styles."""

import pytest

from zoo.eval.code import extract_code, outputs_match, run_tests, score
from zoo.eval.sandbox import Limits

FAST = Limits(wall_s=2.0, cpu_s=2, memory_bytes=512 << 20, max_procs=8)
STDIO_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4\n", "output": "6"}]
FN_TESTS = [{"input": [[2, 7, 11, 15], 9], "output": [0, 1]}, {"input": [[3, 2, 4], 6], "output": [1, 2]}]


def _fence(src: str) -> str:
    return f"<think>easy</think>\nHere:\n```python\n{src}\n```\n"


def test_stdio_correct_and_wrong():
    assert score(_fence("a, b = map(int, input().split())\nprint(a + b)"), STDIO_TESTS, limits=FAST) == 1.0
    assert score(_fence("a, b = map(int, input().split())\nprint(a - b)"), STDIO_TESTS, limits=FAST) == 0.0


def test_function_style_leetcode_class():
    good = """
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return [seen[target - x], i]
            seen[x] = i
"""
    assert score(_fence(good), FN_TESTS, fn_name="twoSum", limits=FAST) == 1.0
    bad = "def twoSum(nums, target):\n    return (0, 1)\n"  # right on case 0 only
    res = run_tests(bad, FN_TESTS, fn_name="twoSum", limits=FAST)
    assert res.passed == 1 and not res.all_passed and "test 1" in res.failure


def test_function_style_forged_output_does_not_pass():
    """Printing something that looks like results cannot pass: expected values never enter the sandbox."""
    forged = "import sys\nprint('[0, 1]')\nprint('[1, 2]')\ndef twoSum(n, t):\n    sys.exit(0)\n"
    assert score(forged, FN_TESTS, fn_name="twoSum", limits=FAST, extract=False) == 0.0


@pytest.mark.parametrize(
    "src",
    [
        "while True: pass",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "x = bytearray(10 * 10**9)",
        "import sys\nfor _ in range(1024): sys.stdout.write('3' * (1 << 20))",
    ],
    ids=["loop", "fork_bomb", "memory", "output"],
)
def test_hostile_scores_zero(src):
    assert score(_fence(src), STDIO_TESTS[:1], limits=FAST) == 0.0


def test_extract_and_compare():
    assert extract_code("```py\nprint(1)\n```\ntext\n```python\nprint(2)\n```") == "print(2)\n"
    assert extract_code("no code") is None
    assert outputs_match("1.0000001 2\n", "1 2")
    assert outputs_match("a  \nb\n\n", "a\nb")
    assert not outputs_match("1 2 3", "1 2")


def test_bad_test_case_names_index():
    with pytest.raises(ValueError, match="test case 1"):
        run_tests("print(1)", [{"input": "", "output": "1"}, {"inp": ""}])
