"""The nano-tiny synthetic reasoning corpus: arithmetic word problems with worked traces, plus tool-call tasks.

Everything is generated from a seed, so the corpus is never shipped, only this generator.

Arithmetic problems ("multi-step" when they need 2+ operations) read like

    Mia has 4 bags with 6 apples in each. She buys 7 more apples. She gives away 5 apples.
    How many apples does Mia have now?

with a worked trace, one line per sentence: the sentence copied verbatim, then its computation; then the answer:

    Mia has 4 bags with 6 apples in each. 4 × 6 = 24
    She buys 7 more apples. 24 + 7 = 31
    She gives away 5 apples. 31 - 5 = 26
                                    -> "The answer is 26."

Design choices, all for learnability by a few-M-parameter model on a small CPU budget:
- Numbers stay below 100 and every later step adds or subtracts a single digit, so each trace line is a units-digit
  fact plus a carry; multiplication only appears as the first step, as single-digit times tables.
- Each trace line starts by copying its sentence, so finding the next sentence is plain induction-style copying
  (continue the question after the text just copied) and the operand sits right before the computation; only
  the arithmetic is left to learn. (A first version restated "buys 7:" only; after 200 pretraining steps it still
  picked the wrong sentence: attention in Nemotron-H has no position encoding.)
- The tokenizer splits digits individually (as the released Nemotron tokenizers do), so sums are digit-wise.
- Thinking off has to do every step in one go: that is what makes thinking on win on the multi-step split.

Tool-call tasks give the model a small tool list and a request; the answer is one `<TOOLCALL>` with the right name
and arguments.

The held-out split draws from the same distribution with another seed and drops any problem whose text also occurs
in the training split.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

NAMES = [("Mia", "She"), ("Leo", "He"), ("Ava", "She"), ("Sam", "He"), ("Zoe", "She"), ("Max", "He"),
         ("Ivy", "She"), ("Ben", "He"), ("Lily", "She"), ("Noah", "He"), ("Emma", "She"), ("Omar", "He"),
         ("Nina", "She"), ("Raj", "He"), ("Tara", "She"), ("Eli", "He")]
ITEMS = ["apples", "marbles", "books", "coins", "stickers", "pencils", "cards", "shells", "cookies", "stamps",
         "flowers", "toys", "beads", "eggs", "rocks", "buttons"]
CONTAINERS = ["bags", "boxes", "jars", "baskets", "packs", "bowls"]
# (sentence template, short restatement for the trace, sign)
ADD = [("{P} buys {n} more {item}.", "buys {n}"), ("{P} finds {n} more {item}.", "finds {n}"),
       ("A friend gives {o} {n} more {item}.", "gets {n}"), ("{P} wins {n} more {item}.", "wins {n}")]
SUB = [("{P} gives away {n} {item}.", "gives away {n}"), ("{P} loses {n} {item}.", "loses {n}"),
       ("{P} sells {n} {item}.", "sells {n}"), ("{P} uses {n} {item}.", "uses {n}")]
OBJ = {"She": "her", "He": "him"}

SYSTEM = "You are nano-tiny, a small assistant that solves arithmetic word problems and calls tools."


@dataclass
class Problem:
    """One arithmetic word problem.

    Attributes:
        question: The word problem.
        steps: Worked trace lines ("buys 7: 24 + 7 = 31").
        answer: The exact integer answer.
        n_ops: Operations needed (1 = single-step; 2+ = multi-step).
    """

    question: str
    steps: list[str]
    answer: int
    n_ops: int

    @property
    def trace(self) -> str:
        return "\n".join(self.steps)

    @property
    def answer_text(self) -> str:
        return f"The answer is {self.answer}."


def make_problem(rng: random.Random, n_ops: int | None = None) -> Problem:
    """Draw one problem with `n_ops` operations (1..4; None draws 1..4 weighted toward multi-step)."""
    if n_ops is None:
        n_ops = rng.choices([1, 2, 3, 4], weights=[2, 3, 3, 2])[0]
    name, P = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    sentences: list[str] = []
    steps: list[str] = []
    ops_left = n_ops
    if rng.random() < 0.4:
        # Multiplication start: c containers with d items each.
        c, d = rng.randint(2, 9), rng.randint(2, 9)
        cont = rng.choice(CONTAINERS)
        sentences.append(f"{name} has {c} {cont} with {d} {item} in each.")
        x = c * d
        steps.append(f"{sentences[-1]} {c} × {d} = {x}")
        ops_left -= 1
    else:
        x = rng.randint(10, 60) if ops_left > 0 else rng.randint(1, 60)
        sentences.append(f"{name} has {x} {item}.")
        steps.append(f"{sentences[-1]} Start: {x}")
    while ops_left > 0:
        n = rng.randint(2, 9)  # from 2: "1 apples" would read badly
        can_add, can_sub = x + n <= 99, x - n >= 0
        add = can_add and (not can_sub or rng.random() < 0.5)
        tmpl, _ = rng.choice(ADD if add else SUB)
        sentences.append(tmpl.format(P=P, o=OBJ[P], n=n, item=item))
        y = x + n if add else x - n
        steps.append(f"{sentences[-1]} {x} {'+' if add else '-'} {n} = {y}")
        x = y
        ops_left -= 1
    sentences.append(f"How many {item} does {name} have now?")
    return Problem(" ".join(sentences), steps, x, n_ops)


# ----------------------------------------------------------------------------------------------------------------
# Tool calls

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Rome", "Berlin", "Madrid", "Seoul", "Boston",
          "Sydney", "Nairobi", "Lisbon", "Dublin", "Vienna"]
UNITS = [("km", "miles"), ("miles", "km"), ("kg", "pounds"), ("pounds", "kg"), ("celsius", "fahrenheit")]

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "convert", "description": "Convert a value between units",
                                      "parameters": {"type": "object",
                                                     "properties": {"value": {"type": "number"},
                                                                    "from": {"type": "string"},
                                                                    "to": {"type": "string"}},
                                                     "required": ["value", "from", "to"]}}},
]


@dataclass
class ToolTask:
    """A request that one tool call answers.

    Attributes:
        request: The user's message.
        call: {"name": ..., "arguments": {...}}, the expected call.
        reason: A one-line thought for the trace.
    """

    request: str
    call: dict[str, Any]
    reason: str = ""
    tools: list[dict[str, Any]] = field(default_factory=lambda: TOOLS)


def make_tool_task(rng: random.Random) -> ToolTask:
    kind = rng.randrange(3)
    if kind == 0:
        city = rng.choice(CITIES)
        req = rng.choice(["What is the weather in {c}?", "Is it raining in {c}?", "How warm is it in {c} today?"])
        return ToolTask(req.format(c=city), {"name": "get_weather", "arguments": {"city": city}},
                        f"weather in {city}: get_weather")
    if kind == 1:
        city = rng.choice(CITIES)
        req = rng.choice(["What time is it in {c}?", "Tell me the local time in {c}.", "What is the time in {c}?"])
        return ToolTask(req.format(c=city), {"name": "get_time", "arguments": {"city": city}},
                        f"time in {city}: get_time")
    a, b = rng.choice(UNITS)
    v = rng.randint(1, 99)
    req = rng.choice(["Convert {v} {a} to {b}.", "How many {b} is {v} {a}?", "What is {v} {a} in {b}?"])
    return ToolTask(req.format(v=v, a=a, b=b), {"name": "convert", "arguments": {"value": v, "from": a, "to": b}},
                    f"{v} {a} to {b}: convert")


def toolcall_text(call: dict[str, Any]) -> str:
    """The assistant content for a call, in the nemotron-v2 form `<TOOLCALL>[{...}]</TOOLCALL>`."""
    return f"<TOOLCALL>{json.dumps([call])}</TOOLCALL>"


# ----------------------------------------------------------------------------------------------------------------
# Splits


def problems(seed: int, n: int, *, exclude: set[str] | None = None, n_ops: int | None = None) -> list[Problem]:
    """`n` distinct problems from `seed`, skipping any question in `exclude` (the held-out guard)."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    out: list[Problem] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could only draw {len(out)} distinct problems of {n}")
        p = make_problem(rng, n_ops)
        if p.question in seen:
            continue
        seen.add(p.question)
        out.append(p)
    return out


def tool_tasks(seed: int, n: int) -> list[ToolTask]:
    rng = random.Random(seed)
    return [make_tool_task(rng) for _ in range(n)]


def pretrain_text(p: Problem) -> str:
    """A plain-text document for the pretraining stage (no chat markup): question, worked steps, answer."""
    return f"Problem: {p.question}\nSolution:\n{p.trace}\n{p.answer_text}"


def tool_pretrain_text(t: ToolTask) -> str:
    return f"Request: {t.request}\nThought: {t.reason}\nCall: {json.dumps(t.call)}"


def problem_messages(p: Problem, *, think: bool, trace: str | None = None) -> list[dict[str, Any]]:
    """Chat messages for SFT: system, user with /think or /no_think, assistant with reasoning and answer."""
    flag = "/think" if think else "/no_think"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{p.question} {flag}"},
        {"role": "assistant", "content": p.answer_text, "reasoning_content": (p.trace if trace is None else trace)
         if think else ""},
    ]


def tool_messages(t: ToolTask, *, think: bool) -> list[dict[str, Any]]:
    flag = "/think" if think else "/no_think"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{t.request} {flag}"},
        {"role": "assistant", "content": "", "tool_calls": [t.call], "reasoning_content": t.reason if think else ""},
    ]
