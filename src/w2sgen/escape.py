"""The one escaping of user-supplied names (tasks, model folders, methods, run names) for
display: a terminal line, Markdown, HTML or a matplotlib figure.

Every target first gets the same clean text: file names read under an ASCII locale (lone
surrogates from `surrogateescape`) are decoded back to their UTF-8 characters, or `?`; control
characters (escape sequences, NUL) and the invisible bidirectional controls that reorder what a
reader sees (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C) become `?`. Then:
- terminal: line breaks and tabs become `?` too, so a name stays on its line;
- markdown: line breaks and tabs become spaces; raw HTML, entities, inline links, table pipes
  and `$` (maths where GitHub renders Markdown) are escaped, so a name stays one cell of one row;
- html: line breaks become spaces, then `html.escape`;
- plot: line breaks are kept (titles break lines on purpose). matplotlib's maths (`$...$`) is
  turned off for report figures (`text.parse_math`), so a `$` shows as a dollar sign.
"""
from __future__ import annotations

import html
import re
from typing import Any, Literal

Target = Literal["terminal", "markdown", "html", "plot"]
UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                    "\u2066-\u2069\u2028\u2029\ufeff]")
BREAKS = re.compile(r"[\r\n\t]+")


def _unsurrogate(text: str) -> str:
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no byte decoded to: not a file name's
        return text.encode("utf-8", "replace").decode("utf-8")


def display(text: Any, target: Target = "terminal") -> str:
    """`text` safe to show on `target` (see the module's docstring)."""
    text = UNSAFE.sub("?", _unsurrogate(str(text)))
    if target == "terminal":
        return BREAKS.sub(lambda m: "?" * len(m.group()), text)
    if target == "plot":
        return text.replace("\t", " ").replace("\r", "")
    text = BREAKS.sub(" ", text)
    if target == "html":
        return html.escape(text)
    text = re.sub(r"\\(?=[!-/:-@\[-`{-~])", r"\\\\", text)  # a backslash that would escape
    text = text.replace("|", "\\|").replace("$", "\\$")  # a table cell; maths on GitHub
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("](", "]\\(")


def sanitize_figure(fig: Any) -> Any:
    """Every text of a matplotlib figure as `display(..., "plot")`, tick labels given as names
    included, and maths off (`text.parse_math`, for this process's figures): call before laying
    out or saving a figure whose texts hold user-supplied names."""
    import matplotlib
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    matplotlib.rcParams["text.parse_math"] = False  # for the tick labels drawn later too
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            old = axis.get_major_formatter()
            # tick labels given as names (set_ticks(..., labels)) are drawn from the formatter
            if isinstance(old, (FixedFormatter, FuncFormatter)) and not getattr(old, "w2s_safe", False):
                safe = FuncFormatter(lambda x, pos, f=old: display(f(x, pos), "plot"))
                safe.w2s_safe = True  # type: ignore[attr-defined]
                axis.set_major_formatter(safe)
    for t in fig.findobj(Text):
        t.set_parse_math(False)
        raw = t.get_text()
        clean = display(raw, "plot")
        if clean != raw:
            t.set_text(clean)
    return fig
