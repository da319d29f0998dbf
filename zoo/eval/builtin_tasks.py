"""The built-in eval tasks: math, code, tool calls (Tool-N1 rule), MCQ and short open answers.

JSONL fields per task:
- ``math``: ``question``, ``answer``.
- ``code``: ``question``, ``tests`` (list of ``{"input", "output"}``), optional ``fn_name``, ``starter_code``.
- ``toolcall``: ``messages`` (or ``question``), ``tools``, ``answer`` (list of ``{"name", "arguments"}``).
- ``mcq``: ``question``, ``options`` (list of texts), ``answer`` (label or option text).
- ``open``: ``question``, ``answer`` (at most 10 words).

Responses reach ``score`` with any reasoning pre-fill of the prompt (``<think>``) put back in front (the runner
does it), so every rule sees the whole assistant turn.
"""

from __future__ import annotations

from zoo.eval import code, math, mcq, toolcall
from zoo.eval.tasks import Row, Task, field, register_task

_MATH = "Please reason step by step, and put your final answer within \\boxed{}."
_CODE = ("Write Python code to solve the problem. Please place the solution code in the following format:\n"
         "```python\n# Your solution code here\n```")


def _math_prompt(row: Row) -> str:
    return f"{field(row, 'question')}\n\n{_MATH}"


def _code_prompt(row: Row) -> str:
    q = field(row, "question")
    if row.get("starter_code"):
        q += ("\n\nSolve the problem starting with the provided function header.\n\nFunction header:\n```\n"
              f"{row['starter_code']}\n```")
    return f"{q}\n\n{_CODE}"


def _mcq_prompt(row: Row) -> str:
    opts = "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(field(row, "options")))
    return (f"{field(row, 'question')}\n\n{opts}\n\nThink inside <think></think>, then give only the letter of the "
            "correct option in \\boxed{}.")


def _open_prompt(row: Row) -> str:
    return f"{field(row, 'question')}\n\nThink inside <think></think>, then give a short answer in \\boxed{{}}."


def _toolcall_prompt(row: Row):
    return row["messages"] if "messages" in row else field(row, "question")


register_task("math", Task(prompt=_math_prompt, score=lambda r, s: math.score(s, str(field(r, "answer"))),
                           description="final \\boxed{} answer vs `answer` (math-verify)"))
register_task("code", Task(prompt=_code_prompt,
                           score=lambda r, s: code.score(s, field(r, "tests"), fn_name=r.get("fn_name")),
                           description="last ```python block run against `tests` in the sandbox"))
register_task("toolcall", Task(prompt=_toolcall_prompt, tools=lambda r: field(r, "tools"),
                               score=lambda r, s: toolcall.score(s, field(r, "answer"), fmt=r.get("format", "chatml")),
                               description="Tool-N1 binary rule on the last call block vs `answer`"))
register_task("mcq", Task(prompt=_mcq_prompt,
                          score=lambda r, s: mcq.score(s, str(field(r, "answer")), field(r, "options")),
                          description="boxed option label vs `answer` (CrossThink format rule)"))
register_task("open", Task(prompt=_open_prompt,
                           score=lambda r, s: mcq.score_open(s, str(field(r, "answer"))),
                           description="boxed short answer (<= 10 words) vs `answer`, normalised"))
