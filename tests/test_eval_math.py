"""Math verifier: answer extraction and a table of (non-)equivalent answer pairs, tricky LaTeX included."""

import pytest

from zoo.eval.math import extract_answer, extract_boxed, is_equivalent, score

EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac12", "1/2"),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("x=3", "3"),
    ("10^{3}", "1000"),
    ("1,000", "1000"),
    ("\\left(1,2\\right)", "(1,2)"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("-\\frac{3}{4}", "-0.75"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\infty", "\\infty"),
    ("\\text{(B)}", "B"),
    ("50\\%", "50"),
    ("\\frac{2}{4}", "\\frac12"),
    ("6", "6.0"),
    ("a+b", "b+a"),
    ("2\\pi", "6.283185307"),
]
NOT_EQUIVALENT = [
    ("[0,1)", "[0,1]"),
    ("\\frac{3}{4}", "0.74"),
    ("\\pi", "3.14"),
    ("\\frac{1}{3}", "0.333"),
    ("(1,2)", "(2,1)"),
    ("3", "4"),
    ("\\sqrt{2}", "2"),
    ("x^2", "2x"),
]


@pytest.mark.parametrize(("gold", "pred"), EQUIVALENT)
def test_equivalent(gold, pred):
    assert is_equivalent(pred, gold)
    assert score(f"so the result is \\boxed{{{pred}}}.", gold) == 1.0


@pytest.mark.parametrize(("gold", "pred"), NOT_EQUIVALENT)
def test_not_equivalent(gold, pred):
    assert not is_equivalent(pred, gold)
    assert score(f"\\boxed{{{pred}}}", gold) == 0.0


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{\\frac{1}{\\sqrt{2}}} done", "\\frac{1}{\\sqrt{2}}"),  # nested braces
        ("first \\boxed{1} then \\boxed{2}", "2"),  # the last box wins
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces do not close the box
        ("\\boxed 5$", "5"),  # brace-less box
        ("\\boxed{unclosed", None),
        ("<think>\\boxed{3}</think> Answer: $5$.", "5"),  # reasoning is ignored
        ("The answer is 7.", "7"),
        ("Final Answer: \\(x = 2\\)", "x = 2"),
        ("no answer here 42", None),
    ],
)
def test_extract(text, answer):
    assert extract_answer(text) == answer


def test_extract_boxed_fbox():
    assert extract_boxed("\\fbox{12}") == "12"


def test_no_answer_scores_zero():
    assert score("I think it is 5", "5") == 0.0
