"""What every figure shares (reports, generative runs, the theory simulation): matplotlib on
the Agg backend with type sizes legible on a slide, and saving as PNG with an SVG beside it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Sizes in points, legible on a slide (a figure shown at about its saved size): tick labels
# and legends 10, axis labels 11, titles 12. SVG text stays text (editable, searchable).
FONTS: dict[str, Any] = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
                         "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
                         "figure.titlesize": 12, "svg.fonttype": "none"}


def pyplot() -> Any:
    """matplotlib.pyplot on Agg, with FONTS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params: Any = plt.rcParams
    params.update(FONTS)
    return plt


def save(fig: Any, out: Path, plt: Any, dpi: int = 100) -> Path:
    """The figure as `out` (PNG) and, beside it, as SVG (the same name, .svg: for slides and
    papers), cropped to what is drawn (legends outside the axes included); the figure is closed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
        fig.savefig(out.with_suffix(".svg"), bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
