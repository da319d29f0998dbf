"""Rewrite math markup in HTML into plain TeX text so that a text browser (lynx) keeps it.

lynx drops `<script>` bodies (where MathJax 2 keeps its TeX), prints MathML as a `[MATH: <mi>...` tag soup, and
prints both halves of KaTeX output (the hidden MathML and the visual spans, giving `e=mc2` after the formula).
The published Nemotron-CC-Math pipeline leaves this to its LLM cleanup step; we normalise before lynx instead,
so the math survives even without an LLM and the LLM sees one notation. Every math source becomes `$tex$`
(inline) or `$$tex$$` (display), HTML-escaped so lynx prints it verbatim:

* MathJax 2: `<script type="math/tex">` (`; mode=display` for display); its rendered `MathJax*` spans are dropped.
* MathJax 3: `<mjx-container>`: the assistive MathML inside it is used, the CHTML glyph soup is dropped.
* KaTeX: `<span class="katex">`: the `application/x-tex` annotation, else its MathML.
* MathML `<math>`: the TeX annotation when present, else a small MathML -> TeX conversion (`mathml_to_tex`).
* `<img>` whose alt text is TeX (class or src mentions latex/tex/math, or the alt has a backslash command).

TeX already written in the page text (`\\(..\\)`, `$..$`) passes through lynx untouched. Code inside `<pre>` is
left alone: lynx keeps its indentation.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BOILERPLATE_TAGS = {"nav", "footer", "aside", "form"}
_MATHJAX_RENDER_CLASSES = {"MathJax", "MathJax_Display", "MathJax_Preview", "MathJax_SVG", "MathJax_CHTML"}
_TEX_ALT = re.compile(r"\\[A-Za-z]+|\^|_\{")


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find(self, pred) -> _Node | None:
        if pred(self):
            return self
        for c in self.children:
            if isinstance(c, _Node) and (hit := c.find(pred)) is not None:
                return hit
        return None


# ---------------------------------------------------------------------------------------------------------------
# MathML -> TeX
# ---------------------------------------------------------------------------------------------------------------

_FUNCS = {"sin", "cos", "tan", "log", "ln", "exp", "lim", "max", "min", "det", "sup", "inf"}
_MO_MAP = {"\u2212": "-", "\u00d7": "\\times ", "\u22c5": "\\cdot ", "\u2264": "\\le ", "\u2265": "\\ge ",
           "\u2260": "\\ne ", "\u00b1": "\\pm ", "\u221e": "\\infty ", "\u2211": "\\sum ", "\u222b": "\\int ",
           "\u2192": "\\to ", "\u2208": "\\in ", "\u2061": "", "\u2062": "", "\u2063": ""}


def mathml_to_tex(node: _Node) -> str:
    """Convert a MathML element tree to TeX; covers the presentation elements pages actually use."""
    kids = [c for c in node.children if isinstance(c, _Node)]
    t = node.tag

    def arg(i: int) -> str:
        return mathml_to_tex(kids[i]) if i < len(kids) else ""

    if t in ("mi", "mn", "mtext", "ms"):
        s = node.text().strip()
        if t == "mi" and s in _FUNCS:
            return f"\\{s} "
        return f"\\text{{{s}}}" if t == "mtext" and s else s
    if t == "mo":
        s = node.text().strip()
        return _MO_MAP.get(s, s)
    if t == "mfrac":
        return f"\\frac{{{arg(0)}}}{{{arg(1)}}}"
    if t == "msqrt":
        return f"\\sqrt{{{''.join(mathml_to_tex(k) for k in kids)}}}"
    if t == "mroot":
        return f"\\sqrt[{arg(1)}]{{{arg(0)}}}"
    if t in ("msup", "mover"):
        return f"{{{arg(0)}}}^{{{arg(1)}}}"
    if t in ("msub", "munder"):
        return f"{{{arg(0)}}}_{{{arg(1)}}}"
    if t in ("msubsup", "munderover"):
        return f"{{{arg(0)}}}_{{{arg(1)}}}^{{{arg(2)}}}"
    if t == "mfenced":
        open_, close = node.attrs.get("open", "("), node.attrs.get("close", ")")
        sep = node.attrs.get("separators", ",")[:1] or ","
        return open_ + sep.join(mathml_to_tex(k) for k in kids) + close
    if t == "mtable":
        rows = [" & ".join(mathml_to_tex(c) for c in r.children if isinstance(c, _Node)) for r in kids]
        return "\\begin{matrix}" + " \\\\ ".join(rows) + "\\end{matrix}"
    if t in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    if t == "semantics":
        return arg(0)
    # math, mrow, mstyle, mpadded, merror, mtd, ...: the children in order.
    return "".join(mathml_to_tex(k) for k in kids)


def _tex_of(root: _Node) -> str:
    """TeX for a captured math element: the TeX annotation when the page carries one, else converted MathML."""
    ann = root.find(lambda n: n.tag == "annotation" and "tex" in n.attrs.get("encoding", "").lower())
    if ann is not None:
        return ann.text().strip()
    mml = root.find(lambda n: n.tag == "math")
    if mml is not None:
        return mathml_to_tex(mml).strip()
    return root.text().strip()


# ---------------------------------------------------------------------------------------------------------------
# The rewriter
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Capture:
    kind: str  # "math" (emit TeX at the end) or "drop" (emit nothing)
    root_tag: str
    display: bool
    depth: int = 1
    stack: list[_Node] = field(default_factory=list)


class _MathRewriter(HTMLParser):
    def __init__(self, *, drop_boilerplate: bool) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.cap: _Capture | None = None
        self.drop_boilerplate = drop_boilerplate
        self._script_math: tuple[bool] | None = None  # inside <script type="math/tex">: (display,)

    # -- capture helpers --
    def _start_capture(self, kind: str, tag: str, attrs: dict[str, str], display: bool) -> None:
        self.cap = _Capture(kind, tag, display, stack=[_Node(tag, attrs)])

    def _finish_capture(self) -> None:
        cap, self.cap = self.cap, None
        assert cap is not None
        if cap.kind == "math":
            tex = " ".join(_tex_of(cap.stack[0]).split())
            if tex:
                delim = "$$" if cap.display else "$"
                self.out.append(html.escape(f"{delim}{tex}{delim}", quote=False))

    # -- HTMLParser callbacks --
    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: (v or "") for k, v in attrs_list}
        cap = self.cap
        if cap is not None:
            if tag == cap.root_tag:
                cap.depth += 1
            node = _Node(tag, attrs)
            cap.stack[-1].children.append(node)
            if tag not in _VOID:
                cap.stack.append(node)
            return
        classes = set(attrs.get("class", "").split())
        typ = attrs.get("type", "").lower()
        if tag == "script" and typ.startswith("math/tex"):
            self._script_math = ("mode=display" in typ,)
            return
        if tag == "math":
            self._start_capture("math", tag, attrs, attrs.get("display") == "block" or attrs.get("mode") == "display")
        elif tag == "mjx-container":
            self._start_capture("math", tag, attrs, attrs.get("display") == "true")
        elif tag == "span" and ("katex" in classes or "katex-display" in classes):
            self._start_capture("math", tag, attrs, "katex-display" in classes)
        elif classes & _MATHJAX_RENDER_CLASSES:
            self._start_capture("drop", tag, attrs, False)
        elif self.drop_boilerplate and (tag in _BOILERPLATE_TAGS or attrs.get("role") == "navigation"):
            self._start_capture("drop", tag, attrs, False)
        elif tag == "img" and self._is_tex_img(attrs):
            self.out.append(html.escape(f"${' '.join(attrs['alt'].split())}$", quote=False))
        else:
            self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        if self.cap is not None:
            self.cap.stack[-1].children.append(_Node(tag, {k: (v or "") for k, v in attrs_list}))
            return
        attrs = {k: (v or "") for k, v in attrs_list}
        if tag == "img" and self._is_tex_img(attrs):
            self.out.append(html.escape(f"${' '.join(attrs['alt'].split())}$", quote=False))
        else:
            self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self._script_math is not None and tag == "script":
            self._script_math = None
            return
        cap = self.cap
        if cap is not None:
            # Pop to the matching open element (tolerates unclosed children, common in hand-written MathML).
            for i in range(len(cap.stack) - 1, 0, -1):
                if cap.stack[i].tag == tag:
                    del cap.stack[i:]
                    break
            if tag == cap.root_tag:
                cap.depth -= 1
                if cap.depth == 0:
                    self._finish_capture()
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._script_math is not None:
            tex = " ".join(data.split())
            if tex:
                delim = "$$" if self._script_math[0] else "$"
                self.out.append(html.escape(f"{delim}{tex}{delim}", quote=False))
            return
        if self.cap is not None:
            self.cap.stack[-1].children.append(data)
            return
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if self.cap is not None:
            self.handle_data(html.unescape(f"&{name};"))
        else:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if self.cap is not None:
            self.handle_data(html.unescape(f"&#{name};"))
        else:
            self.out.append(f"&#{name};")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_comment(self, data: str) -> None:  # comments never reach the reader; lynx would drop them too
        pass

    @staticmethod
    def _is_tex_img(attrs: dict[str, str]) -> bool:
        alt = attrs.get("alt", "").strip()
        if not alt:
            return False
        hint = (attrs.get("class", "") + " " + attrs.get("src", "")).lower()
        return any(k in hint for k in ("latex", "tex", "math", "codecogs")) or bool(_TEX_ALT.search(alt))


def rewrite_math(page: str, *, drop_boilerplate: bool = False) -> str:
    """Return the HTML with every math element replaced by escaped `$tex$` / `$$tex$$` text.

    Args:
        page: decoded HTML.
        drop_boilerplate: also drop `<nav>`, `<footer>`, `<aside>`, `<form>` and `role=navigation` subtrees. Off by
            default (the published pipeline leaves boilerplate to the LLM cleanup step).
    """
    p = _MathRewriter(drop_boilerplate=drop_boilerplate)
    p.feed(page)
    p.close()
    if p.cap is not None:  # an unterminated math element at the end of the page: keep what was captured
        p._finish_capture()
    return "".join(p.out)
