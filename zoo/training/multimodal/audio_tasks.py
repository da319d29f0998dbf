"""The AQA training stream: DCASE-format multiple-choice questions with answer shuffling.

Every drawn question shows its options in a fresh random order (answer-shuffling augmentation: the DCASE 2025
Task 5 metric asks each question under several permutations, so a model must not tie an answer to a position).
The prompt is the harness's own (`zoo.audio.aqa.format_prompt`, letter-listed options) with either of its two
instructions, and the reply is always the option text, which both harness modes accept (likelihood mode scores the
option text; generation mode maps an exact option text to its letter).

Sources: the synthetic set of `zoo.audio.synthetic` (in memory, endless), or a DCASE-format file/directory read
with `zoo.audio.aqa.load_aqa` (real data at full scale).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from zoo.audio.aqa import LIKELIHOOD_PROMPT_TEMPLATE, PROMPT_TEMPLATE, display_options, format_prompt, load_aqa
from zoo.audio.io import as_waveform
from zoo.audio.synthetic import TASKS, make_example
from zoo.training.multimodal.render import AudioRenderer, check_drops
from zoo.training.multimodal.sample import MMSample

__all__ = ["aqa_stream", "shuffled_question"]

TEMPLATES = (LIKELIHOOD_PROMPT_TEMPLATE, PROMPT_TEMPLATE)


def shuffled_question(question: str, choices: Sequence[str], rng: np.random.Generator, shuffle: bool = True) -> str:
    """The question with its options in a random order, in the harness's prompt layout (either instruction)."""
    shown = display_options(list(choices))
    order = rng.permutation(len(shown)) if shuffle else np.arange(len(shown))
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return format_prompt(question, [shown[i] for i in order], template)


def aqa_stream(renderer: AudioRenderer, *, seed: int, tasks: Sequence[str] = tuple(TASKS), data: str | None = None,
               shuffle_answers: bool = True) -> Iterator[MMSample]:
    """Endless rendered AQA samples (drops, counted by the renderer, are skipped).

    Args:
        renderer: Renders (question, reply, clip) with the model's processor.
        seed: The stream is a pure function of it.
        tasks: Synthetic tasks to draw uniformly (ignored with `data`).
        data: A DCASE-format AQA file or directory instead of the synthetic generator.
        shuffle_answers: Shuffle the shown options of every drawn question.
    """
    rng = np.random.default_rng(seed)
    items = load_aqa(data) if data else None
    streak = 0
    while True:
        if items is not None:
            it = items[int(rng.integers(len(items)))]
            wave, question, choices, answer = as_waveform(str(it.audio)), it.question, it.choices, it.answer
            meta = {"part": it.part, "id": it.id}
        else:
            ex = make_example(str(tasks[int(rng.integers(len(tasks)))]), rng)
            wave, question, choices, answer = ex.audio, ex.question, ex.choices, ex.answer
            meta = {"part": ex.part, "task": ex.task}
        reply = display_options(list(choices))[list(choices).index(answer)]
        prompt = shuffled_question(question, choices, rng, shuffle_answers)
        sample = renderer(prompt, reply, [torch.from_numpy(np.asarray(wave, dtype=np.float32))], meta)
        if sample is None:
            streak = check_drops(streak, renderer.max_len)
            continue
        streak = 0
        yield sample
