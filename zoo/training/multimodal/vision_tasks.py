"""The generated image/video task set that trains `nano-vl-tiny`.

Every sample is drawn with PIL from a seeded generator, so answers are exact and learnable from pixels alone:

| task | media | question | options (4 shown, shuffled) |
|---|---|---|---|
| `count` | one image, 1-4 shapes of one colour | How many shapes are in the image? | one .. four |
| `colour` | one image, one large shape | What colour is the shape? | 4 of red, green, blue, yellow, white, purple |
| `event` | a 4- or 6-frame video, one frame shows a white square | In which frame does the white square appear? | 4 frame numbers |

Images have varied sizes and aspect ratios (from 3:1 to 1:3, 56 to 224 px a side on a 56 px tile), so IAP tiling
picks grids from 1x1 to 3x2 plus the thumbnail; video frames are one tile each. The prompt lists the options with
letters in a random order (answer shuffling) and the reply is the option text; evaluation scores each option's
likelihood, so chance is 1/4 on every task.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from zoo.training.multimodal.render import VisionRenderer, check_drops
from zoo.training.multimodal.sample import MMSample
from zoo.vision.processor import Video

__all__ = ["TASKS", "VisionItem", "make_item", "vision_stream", "render_question"]

TASKS = ("count", "colour", "event")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (235, 220, 40),
           "white": (245, 245, 245), "purple": (160, 60, 200)}
NUMBERS = ["one", "two", "three", "four"]
SIZES = [(56, 56), (112, 56), (56, 112), (112, 112), (168, 56), (56, 168), (168, 112), (112, 168), (224, 112),
         (84, 140), (140, 84), (196, 140)]
INSTRUCTION = "Answer with the text of the correct option."
LETTERS = "ABCDEFGH"


@dataclass
class VisionItem:
    """One generated question.

    Attributes:
        task: A name from TASKS.
        question: The question text (without options).
        choices: The 4 options, canonical order.
        answer: The correct option.
        images: PIL images (count, colour).
        videos: `Video`s of pre-decoded frames with fps (event).
        meta: Generating parameters.
    """

    task: str
    question: str
    choices: list[str]
    answer: str
    images: list[Image.Image] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _background(rng: np.random.Generator) -> tuple[int, int, int]:
    g = int(rng.integers(20, 70))
    return (g, g, g + int(rng.integers(0, 20)))


def _place(rng: np.random.Generator, w: int, h: int, r: int, taken: list[tuple[int, int, int]]) -> tuple[int, int]:
    """A centre for a shape of radius r that does not touch earlier shapes (rejection sampling)."""
    for _ in range(2000):
        x, y = int(rng.integers(r + 1, w - r)), int(rng.integers(r + 1, h - r))
        if all((x - a) ** 2 + (y - b) ** 2 > (r + c + 3) ** 2 for a, b, c in taken):
            return x, y
    raise RuntimeError("no room for the shape")  # unreachable for the sizes above


def _shape(draw: ImageDraw.ImageDraw, kind: str, x: int, y: int, r: int, colour: tuple[int, int, int]) -> None:
    box = (x - r, y - r, x + r, y + r)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    else:
        draw.rectangle(box, fill=colour)


def _count(rng: np.random.Generator) -> VisionItem:
    sizes = [wh for wh in SIZES if wh[0] * wh[1] >= 112 * 56]  # room for four shapes
    w, h = sizes[int(rng.integers(len(sizes)))]
    n = int(rng.integers(1, 5))
    img = Image.new("RGB", (w, h), _background(rng))
    draw = ImageDraw.Draw(img)
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    r = max(6, min(w, h) // 8)
    taken: list[tuple[int, int, int]] = []
    for _ in range(n):
        x, y = _place(rng, w, h, r, taken)
        taken.append((x, y, r))
        _shape(draw, "circle" if rng.random() < 0.5 else "square", x, y, r, COLOURS[colour])
    return VisionItem("count", "How many shapes are in the image?", list(NUMBERS), NUMBERS[n - 1], [img],
                      meta={"size": (w, h), "n": n})


def _colour(rng: np.random.Generator) -> VisionItem:
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    names = list(COLOURS)
    colour = names[int(rng.integers(len(names)))]
    img = Image.new("RGB", (w, h), _background(rng))
    r = max(8, int(min(w, h) * rng.uniform(0.25, 0.4)))
    x, y = _place(rng, w, h, r, [])
    _shape(ImageDraw.Draw(img), "circle" if rng.random() < 0.5 else "square", x, y, r, COLOURS[colour])
    others = [c for c in names if c != colour]
    choices = [colour] + [others[i] for i in rng.choice(len(others), 3, replace=False)]
    return VisionItem("colour", "What colour is the shape?", sorted(choices, key=names.index), colour, [img],
                      meta={"size": (w, h)})


def _event(rng: np.random.Generator) -> VisionItem:
    n_frames = int(rng.choice([4, 6]))
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    at = int(rng.integers(n_frames))
    bg = _background(rng)
    frames = []
    for i in range(n_frames):
        f = Image.new("RGB", (w, h), bg)
        d = ImageDraw.Draw(f)
        # A dim distractor moves every frame, so "something changes" alone does not give the answer.
        dx = int((i + 1) * w / (n_frames + 2))
        d.ellipse((dx - 5, h // 2 - 5, dx + 5, h // 2 + 5), fill=(90, 90, 140))
        if i == at:
            r = max(8, min(w, h) // 4)
            x, y = _place(rng, w, h, r, [])
            d.rectangle((x - r, y - r, x + r, y + r), fill=COLOURS["white"])
        frames.append(f)
    labels = [f"frame {i + 1}" for i in range(n_frames)]
    wrong = [i for i in range(n_frames) if i != at]
    shown = sorted([at, *(wrong[i] for i in rng.choice(len(wrong), 3, replace=False))])
    return VisionItem("event", "In which frame does the white square appear?", [labels[i] for i in shown],
                      labels[at], videos=[Video(frames=frames, fps=2.0)], meta={"size": (w, h), "frames": n_frames})


_MAKERS = {"count": _count, "colour": _colour, "event": _event}


def make_item(task: str, rng: np.random.Generator) -> VisionItem:
    """Draw one item of `task` (a pure function of the rng state)."""
    if task not in _MAKERS:
        raise ValueError(f"unknown vision task {task!r}; known: {', '.join(TASKS)}")
    return _MAKERS[task](rng)


def render_question(question: str, options: Sequence[str]) -> str:
    """The user text: question, lettered options in shown order, instruction."""
    lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return f"{question}\n{lines}\n{INSTRUCTION}"


def vision_stream(renderer: VisionRenderer, *, seed: int, tasks: Sequence[str] = TASKS,
                  shuffle_answers: bool = True) -> Iterator[MMSample]:
    """Endless rendered samples of the generated tasks (drops, counted by the renderer, are skipped)."""
    rng = np.random.default_rng(seed)
    tasks = list(tasks) or list(TASKS)
    streak = 0
    while True:
        item = make_item(tasks[int(rng.integers(len(tasks)))], rng)
        order = rng.permutation(len(item.choices)) if shuffle_answers else np.arange(len(item.choices))
        user = render_question(item.question, [item.choices[i] for i in order])
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": item.answer}]
        sample = renderer(messages, item.images, item.videos, {"task": item.task})
        if sample is None:
            streak = check_drops(streak, renderer.max_len)
            continue
        streak = 0
        yield sample
