"""`zoo curate ...`: data curation stages (Nemotron-CC-Math, G-Vendi, Prismatic Synthesis, CrossThink).

Every stage reads JSONL and writes JSONL (atomically, resumable), printing kept/dropped counts with reasons; the
counts are also written next to the output as `OUT.stats.json`. See docs/curation.md for the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from zoo.errors import ZooError


def register(sub: argparse._SubParsersAction) -> None:
    cur = sub.add_parser("curate", help="data curation: CC-Math extraction, G-Vendi, Prismatic Synthesis, CrossThink")
    cs = cur.add_subparsers(dest="curate_command", required=True)

    def stage(name: str, help_: str) -> argparse.ArgumentParser:
        p = cs.add_parser(name, help=help_)
        p.add_argument("input", help="input JSONL")
        p.add_argument("output", help="output JSONL (counts in OUTPUT.stats.json)")
        p.add_argument("--overwrite", action="store_true", help="recompute even if OUTPUT is complete")
        p.add_argument("--max-batches", type=int, default=None, help="stop after N batches (resume later)")
        return p

    p = cs.add_parser("ingest", help="WARC files / HTML, text, notebook files or directories -> raw-page JSONL")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_ingest)

    p = stage("extract", "decode, detect type, render HTML with lynx -dump (math and code kept)")
    p.add_argument("--lynx", default=None, help="lynx executable (default: found on PATH)")
    p.add_argument("--strip-boilerplate", action="store_true", help="drop nav/footer/aside/form before lynx")
    p.add_argument("--no-math-rewrite", action="store_true", help="give lynx the page untouched (as published)")
    p.set_defaults(func=cmd_extract)

    p = stage("cleanup", "LLM cleanup with the CC-Math prompt rules (zoo model or OpenAI-compatible endpoint)")
    _add_llm_args(p, "")
    p.add_argument("--prompt", choices=["default", "code"], default="default")
    p.add_argument("--max-chunk-tokens", type=int, default=5000)
    p.add_argument("--keep-raw", action="store_true", help="keep the input text as raw_text")
    p.set_defaults(func=cmd_cleanup)

    p = stage("quality", "FineMath-style 0-5 quality score; --splits writes OUTPUT-stem.3plus/.4plus.jsonl")
    p.add_argument("--scorer", default="heuristic", help="'heuristic' or a scorer JSON from train-scorer")
    p.add_argument("--min-score", type=int, default=None, help="drop documents scoring below this")
    p.add_argument("--splits", default="3,4", help="comma-separated thresholds ('' for none)")
    p.set_defaults(func=cmd_quality)

    p = cs.add_parser("train-scorer", help="fit the hashed-linear quality scorer on labelled JSONL (text, score)")
    p.add_argument("labels")
    p.add_argument("output", help="scorer JSON")
    p.set_defaults(func=cmd_train_scorer)

    p = stage("dedup", "MinHash-LSH fuzzy dedup (24-char shingles, 20 bands x 13 rows)")
    p.add_argument("--threshold", type=float, default=0.8, help="estimated Jaccard needed to call a duplicate")
    p.set_defaults(func=cmd_dedup)

    p = stage("decontam", "drop documents that embed close to benchmark items")
    p.add_argument("--bench", nargs="+", required=True, help="benchmark JSONL files")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--embed-model", default=None, help="zoo model for mean-pooled embeddings (default: hashed n-grams)")
    p.add_argument("--tiny", action="store_true")
    p.set_defaults(func=cmd_decontam)

    p = stage("crossthink", "CrossThink templates + verifiability filters -> RL-ready JSONL")
    p.add_argument("--template", choices=["open", "mcq", "open_or_mcq"], default="open")
    p.set_defaults(func=cmd_crossthink)

    p = cs.add_parser("blend", help="mix RL-ready JSONL files by a named CrossThink blend")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="gpr_up", help="gpr_up, mr_up, mcq_up, open_up, natural, math_only, ...")
    p.add_argument("--total", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_blend)

    p = cs.add_parser("gvendi", help="G-Vendi of a JSONL dataset under a proxy model")
    p.add_argument("input")
    p.add_argument("--model", required=True, help="proxy: zoo entry or checkpoint dir")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--prompt-key", default="problem")
    p.add_argument("--response-key", default="solution")
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gvendi)

    p = cs.add_parser("prismatic", help="Prismatic Synthesis loop from a seed pool (JSONL with 'problem')")
    p.add_argument("seed_pool")
    p.add_argument("out_dir")
    _add_llm_args(p, "generator ")
    p.add_argument("--proxy", required=True, help="proxy model for gradient features")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--calls-per-iter", type=int, default=8)
    p.add_argument("--keep-fraction", type=float, default=0.5)
    p.add_argument("--agree-samples", type=int, default=0)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--max-len", type=int, default=512)
    p.set_defaults(func=cmd_prismatic)

    p = cs.add_parser("gvendi-study", help="claim in miniature: G-Vendi of subsets vs accuracy after SFT on them")
    p.add_argument("data", help="pool JSONL with problem / solution / answer")
    p.add_argument("heldout", help="held-out JSONL with problem / solution / answer")
    p.add_argument("--out", required=True, help="results JSON")
    p.add_argument("--make-nano-tiny-data", type=int, default=None, metavar="N",
                   help="first write N pool rows (and N/4 held-out rows) from the nano-tiny corpus to DATA/HELDOUT")
    p.add_argument("--model", default="nano-9b-v2", help="entry (tiny profile) or checkpoint dir trained per subset")
    p.add_argument("--proxy", default=None, help="proxy for G-Vendi (default: --model)")
    p.add_argument("--full-size", action="store_true", help="load entries at full size instead of tiny")
    p.add_argument("--subsets", type=int, default=6)
    p.add_argument("--subset-size", type=int, default=64)
    p.add_argument("--clusters", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--heldout-limit", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gvendi_study)


def _add_llm_args(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group(f"{what}backend (one of --model / --endpoint)")
    g.add_argument("--model", default=None, help=f"{what}zoo entry or checkpoint dir")
    g.add_argument("--tiny", action="store_true", help="tiny random variant of --model (tests, demos)")
    g.add_argument("--endpoint", default=None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    g.add_argument("--endpoint-model", default=None, help="model name to send to the endpoint")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--max-new-tokens", type=int, default=4096)
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--seed", type=int, default=0)


def _load(name: str, tiny: bool, seed: int = 0) -> Any:
    import zoo

    m = zoo.load(name, tiny=tiny, seed=seed)
    if getattr(m, "tokenizer", None) is None:
        raise ZooError(f"{name}: model has no tokenizer; curation needs one to encode text")
    return m


def _generator(args: argparse.Namespace) -> Any:
    from zoo.training.curation.llm import ModelGenerator, OpenAIChatGenerator

    if (args.model is None) == (args.endpoint is None):
        raise ZooError("give exactly one of --model and --endpoint")
    if args.endpoint:
        if not args.endpoint_model:
            raise ZooError("--endpoint needs --endpoint-model")
        return OpenAIChatGenerator(args.endpoint, args.endpoint_model, api_key=os.environ.get(args.api_key_env),
                                   temperature=args.temperature, max_tokens=args.max_new_tokens)
    m = _load(args.model, args.tiny, args.seed)
    return ModelGenerator(m, m.tokenizer, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          seed=args.seed)


def _run(stage: Any, args: argparse.Namespace) -> int:
    from zoo.training.curation.stage import run_stage

    st = run_stage(stage, args.input, args.output, overwrite=args.overwrite, max_batches=args.max_batches)
    print(st.summary())
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from zoo.training.curation.warc import ingest

    print(f"ingest: {ingest(args.inputs, args.out)} pages -> {args.out}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from zoo.training.curation.extract import ExtractStage

    return _run(ExtractStage(lynx=args.lynx, rewrite_math=not args.no_math_rewrite,
                             drop_boilerplate=args.strip_boilerplate), args)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from zoo.training.curation.cleanup import PROMPTS, CleanupStage, estimate_tokens

    gen = _generator(args)
    tok = getattr(gen, "tokenizer", None)
    count = (lambda s: len(tok(s, add_special_tokens=False)["input_ids"])) if tok is not None else estimate_tokens
    return _run(CleanupStage(gen, prompt=PROMPTS[args.prompt], max_chunk_tokens=args.max_chunk_tokens,
                             count_tokens=count, keep_raw=args.keep_raw), args)


def cmd_quality(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zoo.training.curation.quality import QualityStage, load_scorer, split_by_score

    rc = _run(QualityStage(load_scorer(args.scorer), min_score=args.min_score), args)
    thresholds = [int(t) for t in args.splits.split(",") if t.strip()]
    if thresholds and Path(args.output).exists():
        prefix = str(args.output).removesuffix(".jsonl")
        for path, n in split_by_score(args.output, prefix, thresholds).items():
            print(f"split: {n} -> {path}")
    return rc


def cmd_train_scorer(args: argparse.Namespace) -> int:
    from zoo.training.curation.quality import train_scorer

    train_scorer(args.labels).save(args.output)
    print(f"scorer -> {args.output}")
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    from zoo.training.curation.dedup import DedupStage

    return _run(DedupStage(threshold=args.threshold), args)


def cmd_decontam(args: argparse.Namespace) -> int:
    from zoo.training.curation.decontam import DecontamStage, HashedNgramEmbedder, ModelEmbedder, load_benchmark_texts

    if args.embed_model:
        m = _load(args.embed_model, args.tiny)
        embedder: Any = ModelEmbedder(m, m.tokenizer)
    else:
        embedder = HashedNgramEmbedder()
    return _run(DecontamStage(embedder, load_benchmark_texts(args.bench), threshold=args.threshold), args)


def cmd_crossthink(args: argparse.Namespace) -> int:
    from zoo.training.curation.crossthink import CrossThinkStage

    return _run(CrossThinkStage(args.template), args)


def cmd_blend(args: argparse.Namespace) -> int:
    from zoo.training.curation.crossthink import blend

    counts = blend(args.inputs, args.out, name=args.name, total=args.total, seed=args.seed)
    print(f"blend {args.name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()) + f" -> {args.out}")
    return 0


def cmd_gvendi(args: argparse.Namespace) -> int:
    from zoo.training.curation.gvendi import encode_sft, gradient_features, gvendi
    from zoo.training.curation.stage import read_jsonl, require

    m = _load(args.model, args.tiny, args.seed)
    samples = []
    for where, rec in read_jsonl(args.input):
        if args.limit is not None and len(samples) >= args.limit:
            break
        samples.append(encode_sft(m.tokenizer, str(require(rec, args.prompt_key, where)),
                                  str(require(rec, args.response_key, where, (str, int, float))),
                                  max_len=args.max_len))
    feats = gradient_features(m, samples, d=args.d, seed=args.seed, batch_size=args.batch_size)
    print(json.dumps({"input": args.input, "n": len(samples), "d": args.d, "gvendi": gvendi(feats)}))
    return 0


def cmd_prismatic(args: argparse.Namespace) -> int:
    from zoo.training.curation.prismatic import PrismaticConfig, proxy_featurizer, run_prismatic
    from zoo.training.curation.stage import read_jsonl

    pool = [r for _, r in read_jsonl(args.seed_pool)]
    gen = _generator(args)
    proxy = _load(args.proxy, args.tiny, args.seed + 1)
    cfg = PrismaticConfig(iterations=args.iterations, calls_per_iter=args.calls_per_iter,
                          keep_fraction=args.keep_fraction, agree_samples=args.agree_samples, seed=args.seed)
    feat = proxy_featurizer(proxy, proxy.tokenizer, d=args.d, max_len=args.max_len)
    _, reports = run_prismatic(pool, gen, feat, cfg, out_dir=args.out_dir, log=print)
    print(json.dumps(reports[-1]))
    return 0


def cmd_gvendi_study(args: argparse.Namespace) -> int:
    from zoo.training.curation.experiments import StudyConfig, gvendi_study, write_nano_tiny_data

    if args.make_nano_tiny_data:
        write_nano_tiny_data(args.data, args.heldout, args.make_nano_tiny_data, max(args.make_nano_tiny_data // 4, 8),
                             seed=args.seed)
    cfg = StudyConfig(model=args.model, proxy=args.proxy, tiny=not args.full_size, subsets=args.subsets,
                      subset_size=args.subset_size, clusters=args.clusters, steps=args.steps, d=args.d,
                      heldout_limit=args.heldout_limit, seed=args.seed)
    res = gvendi_study(args.data, args.heldout, args.out, cfg, log=print)
    print(f"Spearman rho G-Vendi vs held-out answer accuracy: {res['spearman_rho']:.3f} (p={res['spearman_p']:.3g}); "
          f"vs token accuracy: {res['spearman_rho_token']:.3f} (p={res['spearman_p_token']:.3g})")
    return 0
