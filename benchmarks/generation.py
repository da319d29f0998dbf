"""Generation: zoo vs transformers on the same NemotronH config and weights (CPU, fp32, greedy).

Run: ``python -m benchmarks.generation [--quick]``. Two sizes: the ~29M-parameter ``HYBRID`` model and a ~7M
sibling (``SMALL``). For each it measures

* prefill tokens/s on a 2k-token prompt (batch 1): one forward that fills a fresh cache, logits for the last token;
* decode tokens/s at batch 1 and 8 through each library's own ``generate`` (``zoo.generate.generate`` vs
  ``transformers``' ``model.generate``), from a 128-token prompt: (time for N new tokens - time for 1) / (N - 1)
  steps, so prefill is excluded;
* the same decode with a bare loop on each side (what the model code costs without the library's generation loop):
  ``model(...)`` with the cache on both sides ("loop"), and zoo's ``LanguageModel.decode_step`` ("step loop", the
  per-token fast path that ``zoo.generate`` uses);
* with ``--compile``, also zoo's ``generate`` after ``model.compile_decode()`` (``torch.compile`` of the Mamba / MLP
  block steps), with the compile time; off by default (on CPU it does not pay, see docs/performance.md).

Both sides run the same greedy decode; the generated tokens are compared. Writes ``results/generation.json``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from benchmarks._common import print_table, write_json
from benchmarks._models import HYBRID, SMALL, build_pair, n_params
from zoo.kernels import dispatch

CLOCK = time.perf_counter  # --cpu-time switches to time.process_time


def _interleaved_best(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Best time of each function, running them in turn so machine-load changes hit all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = CLOCK()
            fn()
            best[name] = min(best[name], CLOCK() - start)
    return best


def _hf_loop(hf, ids: torch.Tensor, new: int) -> torch.Tensor:
    from transformers import DynamicCache

    out = hf(ids, past_key_values=DynamicCache(config=hf.config), use_cache=True, logits_to_keep=1)
    tok = out.logits[:, -1:].argmax(-1)
    for _ in range(new - 1):
        out = hf(tok, past_key_values=out.past_key_values, use_cache=True)
        tok = out.logits[:, -1:].argmax(-1)
    return tok


def _zoo_step_loop(model, ids: torch.Tensor, new: int) -> torch.Tensor:
    cache = model.new_cache(ids.shape[0])
    out = model(ids, cache=cache, logits_to_keep=1)
    tok = out.logits[:, -1:].argmax(-1)
    for _ in range(new - 1):
        tok = model.decode_step(tok, cache).argmax(-1, keepdim=True)
    return tok


def _zoo_loop(model, ids: torch.Tensor, new: int) -> torch.Tensor:
    cache = model.new_cache(ids.shape[0])
    out = model(ids, cache=cache, logits_to_keep=1)
    tok = out.logits[:, -1:].argmax(-1)
    for _ in range(new - 1):
        out = model(tok, cache=cache)
        tok = out.logits[:, -1:].argmax(-1)
    return tok


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=2048, help="prompt length for the prefill measurement")
    parser.add_argument("--prompt", type=int, default=128, help="prompt length before decoding")
    parser.add_argument("--new", type=int, default=32, help="tokens generated per decode measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke test)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process's CPU time instead of wall time: on a shared, loaded machine it "
                             "leaves out the time other jobs hold the core (only meaningful with 1 thread)")
    parser.add_argument("--compile", action="store_true",
                        help="also time zoo generate after model.compile_decode() (torch.compile; slow to start)")
    args = parser.parse_args(argv)
    if args.quick:
        args.prefill, args.prompt, args.new, args.repeats = 256, 32, 6, 1
    from zoo.generate import generate as zoo_generate

    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter

    results: dict = {"threads": torch.get_num_threads(), "clock": "cpu" if args.cpu_time else "wall", "models": {}}
    rows: list[list] = []
    for name, overrides in (("29M", {}), ("7M", SMALL)):
        results["models"][name] = _run_config(name, overrides, args, zoo_generate, rows)
    print_table(f"Generation: zoo vs transformers, NemotronH, fp32 CPU, {torch.get_num_threads()} threads "
                f"({'CPU-time' if args.cpu_time else 'wall'} tokens/s, best of {args.repeats}; decode from a {args.prompt}-token prompt, {args.new} new tokens)",
                ["model", "", "hf generate", "zoo generate", "x", "hf loop", "zoo loop", "x", "zoo step loop", "x",
                 *(["zoo compiled", "x", "compile s"] if args.compile else []), "same tokens"], rows)
    results["summary"] = {}
    for name, res in results["models"].items():
        results["summary"][f"{name} prefill x @{args.prefill}"] = res["prefill"]["ratio"]
        for b, d in res["decode"]["by_batch"].items():
            results["summary"][f"{name} decode x @b{b} (generate)"] = d["ratio_generate"]
            results["summary"][f"{name} decode x @b{b} (step loop)"] = d["ratio_step_loop"]
            if "ratio_compiled" in d:
                results["summary"][f"{name} decode x @b{b} (compiled generate)"] = d["ratio_compiled"]
    write_json("generation", results)
    return results


def _run_config(name: str, overrides: dict, args: argparse.Namespace, zoo_generate, rows: list[list]) -> dict:
    """Measure one model size; appends its table rows and returns its results."""
    hf, ours = build_pair(overrides)
    # No end-of-sequence stop on either side: both generate exactly the tokens asked for.
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    vocab = HYBRID["vocab_size"]
    gen = torch.Generator().manual_seed(0)
    results: dict = {"config": HYBRID | overrides, "params_M": n_params(ours) / 1e6}

    with torch.inference_mode(), dispatch.force_backend("torch"):
        # ---- prefill
        ids = torch.randint(3, vocab, (1, args.prefill), generator=gen)
        from transformers import DynamicCache

        t = _interleaved_best({
            "transformers": lambda: hf(ids, past_key_values=DynamicCache(config=hf.config), use_cache=True,
                                       logits_to_keep=1),
            "zoo": lambda: ours(ids, cache=ours.new_cache(1), logits_to_keep=1),
        }, args.repeats)
        prefill = {k: args.prefill / v for k, v in t.items()}
        results["prefill"] = {"tokens": args.prefill, "tok_per_s": prefill,
                              "ratio": prefill["zoo"] / prefill["transformers"]}
        label = f"{name} ({results['params_M']:.1f}M)"
        rows.append([label, f"prefill {args.prefill} b=1", prefill["transformers"], prefill["zoo"],
                     results["prefill"]["ratio"], "", "", "", "", "", *([""] * 3 * args.compile), ""])

        # ---- decode
        decode = {}
        for batch in args.batches:
            prompt = torch.randint(3, vocab, (batch, args.prompt), generator=gen)
            mask = torch.ones_like(prompt)

            def hf_gen(n: int, prompt=prompt, mask=mask):
                return hf.generate(prompt, attention_mask=mask, max_new_tokens=n, do_sample=False)[:, prompt.shape[1]:]

            def zoo_gen(n: int, prompt=prompt):
                return torch.tensor(zoo_generate(ours, prompt, max_new_tokens=n, eos_token_id=[]))

            ref = hf_gen(args.new)
            same = torch.equal(ref, zoo_gen(args.new))
            same = same and torch.equal(ref[:, -1:], _zoo_step_loop(ours, prompt, args.new))
            fns = {
                "transformers generate": (lambda: hf_gen(args.new), lambda: hf_gen(1)),
                "zoo generate": (lambda: zoo_gen(args.new), lambda: zoo_gen(1)),
                "transformers loop": (lambda p=prompt: _hf_loop(hf, p, args.new), lambda p=prompt: _hf_loop(hf, p, 1)),
                "zoo loop": (lambda p=prompt: _zoo_loop(ours, p, args.new), lambda p=prompt: _zoo_loop(ours, p, 1)),
                "zoo step loop": (lambda p=prompt: _zoo_step_loop(ours, p, args.new),
                                  lambda p=prompt: _zoo_step_loop(ours, p, 1)),
            }
            compile_s = None
            if args.compile:
                with torch.inference_mode(False):  # a copy with ordinary (not inference-mode) parameters
                    compiled = copy.deepcopy(ours)
                start = time.perf_counter()
                compiled.compile_decode()
                zoo_generate(compiled, prompt, max_new_tokens=2, eos_token_id=[])  # the first decode step compiles
                compile_s = time.perf_counter() - start
                same = same and torch.equal(ref, torch.tensor(zoo_generate(compiled, prompt, max_new_tokens=args.new,
                                                                         eos_token_id=[])))
                fns["zoo compiled"] = (
                    lambda p=prompt, m=compiled: zoo_generate(m, p, max_new_tokens=args.new, eos_token_id=[]),
                    lambda p=prompt, m=compiled: zoo_generate(m, p, max_new_tokens=1, eos_token_id=[]))
            flat = {f"{k}|{i}": f for k, pair in fns.items() for i, f in enumerate(pair)}
            times = _interleaved_best(flat, args.repeats)
            tps = {k: batch * (args.new - 1) / max(times[f"{k}|0"] - times[f"{k}|1"], 1e-9) for k in fns}
            decode[batch] = {"tok_per_s": tps, "greedy_tokens_identical": same,
                             "ratio_generate": tps["zoo generate"] / tps["transformers generate"],
                             "ratio_loop": tps["zoo loop"] / tps["transformers loop"],
                             "ratio_step_loop": tps["zoo step loop"] / tps["transformers loop"]}
            extra = []
            if args.compile:
                decode[batch]["ratio_compiled"] = tps["zoo compiled"] / tps["transformers generate"]
                decode[batch]["compile_s"] = compile_s
                extra = [tps["zoo compiled"], decode[batch]["ratio_compiled"], compile_s]
            rows.append([label, f"decode b={batch}", tps["transformers generate"], tps["zoo generate"],
                         decode[batch]["ratio_generate"], tps["transformers loop"], tps["zoo loop"],
                         decode[batch]["ratio_loop"], tps["zoo step loop"], decode[batch]["ratio_step_loop"], *extra,
                         same])
        results["decode"] = {"prompt": args.prompt, "new_tokens": args.new, "by_batch": decode}
    return results


if __name__ == "__main__":
    main()
