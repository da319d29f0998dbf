"""A synthetic audio question answering set built from real generated audio: count the beeps, which tone is higher,
what comes first, how many beeps precede the noise.

Used by the AQA harness tests (an oracle must score 100%, an answerer that always picks the first option must sit
at chance) and as training data for the tiny audio model (`nano-audio-tiny`), where the answers are learnable from
the audio alone. Every clip is rendered sample by sample here (sine tones with raised-cosine edges, white-noise
bursts, a faint noise floor), so the ground truth is exact.

Tasks and the DCASE 2025 Task 5 part they stand in for:

| task | part | question | options |
|---|---|---|---|
| `count` | tsqa | How many beeps are there? | one .. four |
| `order` | tsqa | Which sound comes first? | a low tone, a high tone, a burst of noise |
| `pitch` | bqa | Which tone is higher? | the first tone, the second tone |
| `before_noise` | cqa | How many beeps come before the noise burst? | none .. three |

`make_example` draws one example in memory (for training loops); `write_synthetic_aqa` writes a whole set (audio
files + `items.jsonl` in the harness's format) for evaluation.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TASKS", "AQAExample", "make_example", "write_synthetic_aqa"]

SAMPLING_RATE = 16000
TASKS: dict[str, str] = {"count": "tsqa", "order": "tsqa", "pitch": "bqa", "before_noise": "cqa"}
"""Task name -> AQA part."""

_NUMBERS = ["none", "one", "two", "three", "four"]
_ORDER_OPTIONS = ["a low tone", "a high tone", "a burst of noise"]


@dataclass
class AQAExample:
    """One synthetic question.

    Attributes:
        audio: (samples,) float32 mono waveform at `sampling_rate`.
        sampling_rate: Hz.
        question: the question text.
        choices: option strings, in canonical (unshuffled) order.
        answer: the correct option (one of `choices`).
        part: DCASE part (`bqa`, `tsqa`, `cqa`).
        task: synthetic task name (a key of `TASKS`).
        meta: the generating parameters (event onsets in seconds, frequencies in Hz), for debugging.
    """

    audio: np.ndarray
    sampling_rate: int
    question: str
    choices: list[str]
    answer: str
    part: str
    task: str
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Sound events
# ---------------------------------------------------------------------------------------------------------------


def _envelope(n: int, sr: int, ramp_s: float = 0.01) -> np.ndarray:
    """Raised-cosine on/off ramps, so events have no clicks (which would add broadband energy)."""
    env = np.ones(n, dtype=np.float64)
    r = min(int(ramp_s * sr), n // 2)
    if r > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, r))
        env[:r] = ramp
        env[n - r :] = ramp[::-1]
    return env


def _tone(freq: float, dur: float, amp: float, sr: int) -> np.ndarray:
    n = int(dur * sr)
    t = np.arange(n) / sr
    return amp * np.sin(2 * np.pi * freq * t) * _envelope(n, sr)


def _noise(dur: float, amp: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(dur * sr)
    return amp * rng.uniform(-1.0, 1.0, n) * _envelope(n, sr)


def _render(events: list[tuple[float, np.ndarray]], total_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mix events (onset seconds, samples) onto a faint noise floor; (samples,) float32 peaking below 1."""
    out = 0.002 * rng.standard_normal(int(total_s * sr))
    for onset, sig in events:
        i = int(onset * sr)
        out[i : i + sig.shape[0]] += sig[: out.shape[0] - i]
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def _sequence(n_events: int, rng: np.random.Generator, start: float = 0.2) -> list[float]:
    """Onsets of `n_events` events of 0.15-0.25 s separated by clear gaps (0.2-0.4 s)."""
    onsets, t = [], start + rng.uniform(0.0, 0.2)
    for _ in range(n_events):
        onsets.append(t)
        t += 0.25 + rng.uniform(0.2, 0.4)
    return onsets


# ---------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------


def _count(rng: np.random.Generator, sr: int) -> AQAExample:
    n = int(rng.integers(1, 5))
    freq, amp = rng.uniform(500, 1000), rng.uniform(0.3, 0.6)
    onsets = _sequence(n, rng)
    events = [(t, _tone(freq, rng.uniform(0.15, 0.25), amp, sr)) for t in onsets]
    audio = _render(events, onsets[-1] + 0.8, sr, rng)
    return AQAExample(
        audio, sr, "How many beeps are there?", _NUMBERS[1:5], _NUMBERS[n], "tsqa", "count",
        {"onsets": onsets, "freq": freq},
    )  # fmt: skip


def _order(rng: np.random.Generator, sr: int) -> AQAExample:
    kinds = list(rng.permutation(3))  # indices into _ORDER_OPTIONS, in order of occurrence
    low, high = rng.uniform(250, 450), rng.uniform(1200, 2000)
    onsets = _sequence(3, rng)
    events = []
    for t, k in zip(onsets, kinds):
        dur = rng.uniform(0.15, 0.25)
        sig = _tone(low, dur, 0.5, sr) if k == 0 else _tone(high, dur, 0.5, sr) if k == 1 else _noise(dur, 0.3, sr, rng)
        events.append((t, sig))
    audio = _render(events, onsets[-1] + 0.8, sr, rng)
    return AQAExample(
        audio, sr, "Which sound comes first?", list(_ORDER_OPTIONS), _ORDER_OPTIONS[kinds[0]], "tsqa", "order",
        {"onsets": onsets, "order": [_ORDER_OPTIONS[k] for k in kinds], "low": low, "high": high},
    )  # fmt: skip


def _pitch(rng: np.random.Generator, sr: int) -> AQAExample:
    a = rng.uniform(300, 900)
    b = a * rng.uniform(1.5, 2.5)  # at least a fifth apart: unambiguous to any listener
    first_higher = bool(rng.integers(0, 2))
    f1, f2 = (b, a) if first_higher else (a, b)
    onsets = _sequence(2, rng)
    events = [(onsets[0], _tone(f1, 0.4, 0.5, sr)), (onsets[1] + 0.15, _tone(f2, 0.4, 0.5, sr))]
    audio = _render(events, onsets[1] + 1.0, sr, rng)
    choices = ["the first tone", "the second tone"]
    return AQAExample(
        audio, sr, "Two tones play one after the other. Which tone is higher?", choices,
        choices[0] if first_higher else choices[1], "bqa", "pitch", {"freqs": [f1, f2]},
    )  # fmt: skip


def _before_noise(rng: np.random.Generator, sr: int) -> AQAExample:
    n_before = int(rng.integers(0, 4))
    n_after = int(rng.integers(0, 3))
    freq = rng.uniform(500, 1000)
    onsets = _sequence(n_before + 1 + n_after, rng)
    events = []
    for i, t in enumerate(onsets):
        dur = rng.uniform(0.15, 0.25)
        events.append((t, _noise(dur, 0.3, sr, rng) if i == n_before else _tone(freq, dur, 0.5, sr)))
    audio = _render(events, onsets[-1] + 0.8, sr, rng)
    return AQAExample(
        audio, sr, "How many beeps come before the noise burst?", _NUMBERS[0:4], _NUMBERS[n_before], "cqa",
        "before_noise", {"onsets": onsets, "noise_index": n_before},
    )  # fmt: skip


_MAKERS = {"count": _count, "order": _order, "pitch": _pitch, "before_noise": _before_noise}


def make_example(task: str, rng: np.random.Generator, sampling_rate: int = SAMPLING_RATE) -> AQAExample:
    """Draw one synthetic example in memory.

    Args:
        task: a key of `TASKS`.
        rng: the random source (the example is a pure function of its state).
        sampling_rate: output rate in Hz (tones stay below 2 kHz, so 8 kHz and up are fine).

    Returns:
        The example, audio included.
    """
    if task not in _MAKERS:
        raise ValueError(f"unknown synthetic AQA task {task!r}; known: {', '.join(_MAKERS)}")
    return _MAKERS[task](rng, sampling_rate)


def _jsonable(v: object) -> object:
    """numpy scalars and arrays -> plain Python, for json.dumps."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


def write_synthetic_aqa(
    out_dir: str | os.PathLike,
    *,
    n_per_task: int = 4,
    tasks: tuple[str, ...] = tuple(TASKS),
    seed: int = 0,
    sampling_rate: int = SAMPLING_RATE,
) -> Path:
    """Write a synthetic AQA set: `audio/<id>.wav` files and `items.jsonl` (the harness's input format).

    Each line holds `id`, `audio` (relative to the JSONL file), `question`, `choices`, `answer`, `part`, and the
    extra fields `task` and `meta`. Files are written to a temporary name and renamed, so a crash leaves no
    half-written set.

    Args:
        out_dir: directory to create or fill.
        n_per_task: examples per task.
        tasks: which tasks to include.
        seed: the whole set is a pure function of it.
        sampling_rate: rate of the written wav files.

    Returns:
        Path to `items.jsonl`.
    """
    import soundfile as sf

    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for task in tasks:
        for i in range(n_per_task):
            ex = make_example(task, rng, sampling_rate)
            item_id = f"{task}_{i:04d}"
            rel = f"audio/{item_id}.wav"
            tmp = out / "audio" / f".{item_id}.tmp.wav"
            sf.write(str(tmp), ex.audio, sampling_rate, subtype="PCM_16")
            os.replace(tmp, out / rel)
            meta = {
                k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, list)) else float(v))
                for k, v in ex.meta.items()
            }
            lines.append({
                "id": item_id, "audio": rel, "question": ex.question, "choices": ex.choices, "answer": ex.answer,
                "part": ex.part, "task": task, "meta": meta,
            })  # fmt: skip
    path = out / "items.jsonl"
    fd, tmp_name = tempfile.mkstemp(dir=out, prefix=".items.", suffix=".jsonl")
    with os.fdopen(fd, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    os.replace(tmp_name, path)
    return path
