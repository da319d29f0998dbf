"""LLM cleanup of extracted pages (Nemotron-CC-Math step 2): an LLM rewrites lynx text into clean, LaTeX-math text.

The published run used Phi-4 on vLLM (T 0.7, top-p 0.8, top-k 20) with inputs chunked to at most 5,000 tokens.
`CLEANUP_PROMPT` restates the published rules in our own words (keep main content and titles; remove boilerplate,
navigation, ads and spam comments; keep every piece of math; keep useful comments and references; write math as
LaTeX between single dollar signs; never answer questions from the page; never drop code, fixing it only
minimally; fix typos; return exactly `NO USEFUL CONTENT` for pages with nothing useful; no preamble).
`CODE_CLEANUP_PROMPT` is the code-heavy variant.

Chunking splits at blank lines, then at line ends, then inside a line, so that each chunk's token count (by the
backend's tokenizer, or an estimate of 4 characters per token when none is given) stays under the limit; the
cleaned chunks are joined with a blank line. A chunk answered `NO USEFUL CONTENT` contributes nothing; a page
whose chunks all say so is dropped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.training.curation.llm import TextGenerator
from zoo.training.curation.stage import Drop, Result, require

NO_USEFUL_CONTENT = "NO USEFUL CONTENT"
DEFAULT_MAX_CHUNK_TOKENS = 5000

CLEANUP_PROMPT = """\
Below is the text of a web page, produced by a text-mode browser. Rewrite it as a clean document.

Rules:
- Keep only the main content of the page and its titles.
- Remove boilerplate: navigation menus, headers and footers, advertisements, cookie notices, links to other pages, \
and spam or off-topic comments.
- Keep all mathematical content exactly: theorems, definitions, formulas, equations, derivations and proofs.
- Keep comments and references that add useful information.
- Write every formula in LaTeX between single dollar signs, $...$; do not use \\[ \\], \\( \\) or $$ $$.
- Do not answer, solve or discuss any question that appears in the page; only reproduce it.
- Never remove code. Fix code only where it is clearly broken, and minimally.
- Correct obvious typos and unclear wording; format the result so it is ready to publish.
- If the page has no useful content, reply with exactly: NO USEFUL CONTENT
- Reply with the rewritten document only: no introduction, explanation or closing remark.

Page:
{text}"""

CODE_CLEANUP_PROMPT = """\
Below is the text of a web page about programming or computation, produced by a text-mode browser. Rewrite it as \
a clean document.

Rules:
- Keep the main content, its titles, every code block with its exact indentation, and command output that \
explains the code.
- Remove navigation, ads, cookie notices, unrelated links and spam comments.
- Keep all math; write formulas in LaTeX between single dollar signs, $...$.
- Do not answer or solve questions in the page; do not add new code; fix code only where it is clearly broken.
- If the page has no useful content, reply with exactly: NO USEFUL CONTENT
- Reply with the rewritten document only.

Page:
{text}"""

PROMPTS = {"default": CLEANUP_PROMPT, "code": CODE_CLEANUP_PROMPT}


def estimate_tokens(text: str) -> int:
    """Token estimate used when no tokenizer is given: about 4 characters per token for English web text."""
    return (len(text) + 3) // 4


def chunk_text(text: str, max_tokens: int, count: Callable[[str], int] = estimate_tokens) -> list[str]:
    """Split `text` into pieces of at most `max_tokens` tokens, preferring paragraph, then line boundaries.

    Args:
        text: document.
        max_tokens: token budget per chunk (>= 1).
        count: token counter.

    Returns:
        Chunks in order; joining them with the separators they were split on gives back the text.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")

    def split(piece: str, seps: tuple[str, ...]) -> list[str]:
        if count(piece) <= max_tokens:
            return [piece]
        if not seps:
            # A single line longer than the budget: cut by characters, using the estimate's ratio as a guide.
            width = max(1, len(piece) * max_tokens // max(count(piece), 1))
            return [piece[i:i + width] for i in range(0, len(piece), width)]
        sep, rest = seps[0], seps[1:]
        out: list[str] = []
        cur = ""
        for part in piece.split(sep):
            cand = part if not cur else cur + sep + part
            if count(cand) <= max_tokens:
                cur = cand
                continue
            if cur:
                out.append(cur)
            if count(part) <= max_tokens:
                cur = part
            else:
                out.extend(split(part, rest))
                cur = ""
        if cur:
            out.append(cur)
        return out

    return [c for c in split(text, ("\n\n", "\n")) if c.strip()]


@dataclass
class CleanupStage:
    """JSONL stage: `text` -> LLM-cleaned `text` (the original is kept as `raw_text` when `keep_raw`).

    Drops (reasons): `no_useful_content` (the model said so for every chunk), `empty`.
    """

    generator: TextGenerator
    name: str = "cleanup"
    batch_size: int = 8
    prompt: str = CLEANUP_PROMPT
    max_chunk_tokens: int = DEFAULT_MAX_CHUNK_TOKENS
    count_tokens: Callable[[str], int] = field(default=estimate_tokens)
    keep_raw: bool = False

    def process_batch(self, records: list[dict[str, Any]], wheres: list[str]) -> list[Result]:
        # All chunks of the batch go to the backend in one call, so servers can batch them.
        spans: list[tuple[int, int]] = []
        prompts: list[str] = []
        for rec, where in zip(records, wheres):
            chunks = chunk_text(require(rec, "text", where), self.max_chunk_tokens, self.count_tokens)
            spans.append((len(prompts), len(prompts) + len(chunks)))
            prompts.extend(self.prompt.format(text=c) for c in chunks)
        outs = self.generator.generate(prompts) if prompts else []
        results: list[Result] = []
        for rec, (a, b) in zip(records, spans):
            if a == b:
                results.append(Drop("empty"))
                continue
            kept = [o.strip() for o in outs[a:b] if o.strip() and o.strip() != NO_USEFUL_CONTENT]
            if not kept:
                results.append(Drop("no_useful_content"))
                continue
            res = dict(rec)
            if self.keep_raw:
                res["raw_text"] = rec["text"]
            res["text"] = "\n\n".join(kept)
            res["cleanup_chunks"] = b - a
            results.append(res)
        return results
