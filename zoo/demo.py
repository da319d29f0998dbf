"""`make demo`: load a model and generate from it.

Until the embedded `nano-tiny` model ships, this loads the tiny random-weight variant of nano-9b-v2 and says so
plainly: its output is noise, but every part of the path (registry, hybrid backbone, cache, tokenizer, sampling)
is the real one.
"""

from __future__ import annotations

import time

import zoo


def main() -> int:
    name = "nano-9b-v2"
    print(f"Loading {name} (tiny=True): the block pattern of the real model with RANDOM weights, no download.")
    m = zoo.load(name, tiny=True, seed=0)
    print(f"  {m.num_parameters():,} parameters, pattern {m.config.pattern}")
    tok = m.tokenizer
    prompt = "The answer to 2 + 3 is"
    ids = tok(prompt, return_tensors="pt").input_ids
    t0 = time.perf_counter()
    out = m.generate(ids, max_new_tokens=32)
    dt = time.perf_counter() - t0
    new = out[0]  # generated ids of the first (only) sequence
    print(f"prompt: {prompt!r}")
    print(f"output (random weights, so this is noise): {tok.decode(new)!r}")
    print(f"{len(new)} tokens in {dt:.2f}s ({len(new) / dt:.1f} tok/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
