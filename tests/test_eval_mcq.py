"""CrossThink-style MCQ and short open answers: extraction, normalisation, the format requirement."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.eval.mcq import extract_choice, normalise, open_answer_ok, score, score_open

OPTS = ["Paris", "London", "Rome", "Berlin"]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("\\boxed{C}", "C"),
        ("\\boxed{(b)}", "B"),
        ("\\boxed{\\text{D}}", "D"),
        ("\\boxed{Paris}", "A"),  # option text mapped back to its label
        ("The answer is (C).", "C"),
        ("Answer: d", "D"),
        ("B", "B"),
        ("<think>maybe \\boxed{A}</think>\\boxed{B}", "B"),  # only the answer part counts
        ("\\boxed{E}", None),  # no option E
        ("I don't know", None),
    ],
)
def test_extract_choice(text, label):
    assert extract_choice(text, OPTS) == label


def test_mcq_score_and_format():
    assert score("<think>capital of France</think>\\boxed{A}", "A", OPTS) == 1.0
    assert score("<think>capital of France</think>\\boxed{A}", "Paris", OPTS) == 1.0
    assert score("<think>hmm</think>\\boxed{B}", "A", OPTS) == 0.0
    assert score("\\boxed{A}", "A", OPTS) == 0.0  # no reasoning: format fails
    assert score("<think>x</think>The answer is A", "A", OPTS) == 0.0  # not boxed: format fails
    assert score("The answer is A", "A", OPTS, require_format=False) == 1.0
    assert score("x</think>\\boxed{A}", "A", OPTS, prompt_opens_think=True) == 1.0


def test_open_answers():
    assert normalise("The  Eiffel-Tower!") == "eiffel tower"
    assert score_open("<think>r</think>\\boxed{\\text{the Eiffel Tower}}", "Eiffel tower") == 1.0
    assert score_open("<think>r</think>\\boxed{Louvre}", "Eiffel tower") == 0.0
    assert open_answer_ok("one two three") and not open_answer_ok(" ".join(["w"] * 11))
    with pytest.raises(ValueError, match="10 words"):
        score_open("\\boxed{x}", " ".join(["w"] * 11))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_no_crash(text):
    assert score(text, "A", OPTS) in (0.0, 1.0)
    assert extract_choice(text) is None or len(extract_choice(text)) == 1
