"""Regenerate tests/golden/chat_templates.json by rendering the official chat templates on the case table.

Run from the repository root when the reference templates are available (they are not part of the repo):

    .venv/bin/python tests/golden/render_chat_templates.py [/work/shared/templates]

Rendering goes through transformers' own chat-template engine (`render_jinja_template`), i.e. exactly what
`tokenizer.apply_chat_template(..., tokenize=False)` produces. A case the template cannot render (it raises) is
stored as null and skipped by the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers.utils.chat_template_utils import render_jinja_template

sys.path.insert(0, str(Path(__file__).parent))
from chat_cases import BOS, CASES, TEMPLATES  # noqa: E402

OUT = Path(__file__).parent / "chat_templates.json"


def render_all(template_dir: Path) -> dict[str, dict[str, str | None]]:
    golden: dict[str, dict[str, str | None]] = {}
    for fmt, fname in TEMPLATES.items():
        template = (template_dir / fname).read_text()
        for case, (messages, tools) in CASES.items():
            for gen in (True, False):
                try:
                    text = render_jinja_template(
                        [messages], tools=tools, chat_template=template, add_generation_prompt=gen, bos_token=BOS[fmt]
                    )[0][0]
                except Exception:  # the official template itself fails on this input
                    text = None
                golden.setdefault(fmt, {})[f"{case}|gen={int(gen)}"] = text
    return golden


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/templates")
    OUT.write_text(json.dumps(render_all(src), ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
