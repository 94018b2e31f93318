"""The text a sweep ends with: its finished cells' table, the median PGR over seeds, and the
cells that did not finish."""
from __future__ import annotations

import textwrap
import warnings

from .runner import SweepResult


def report(result: SweepResult, most_rows: int = 40) -> str:
    """The sweep's finished cells: the per-run table and the median PGR over seeds."""
    from .. import report as rep
    from ..store import Store

    store = Store(result.suite.store)
    runs = {}
    for c in result.suite.cells:
        r = store.finished_run(c.hash)
        if r:
            runs[r["id"]] = r
    runs_list = sorted(runs.values(), key=lambda r: r["id"])
    parts = []
    if not runs_list:
        parts.append("no finished cells")
    elif len(runs_list) <= most_rows:
        parts.append(rep.table(runs_list))
    else:
        parts.append(f"{len(runs_list)} finished cells; every run: w2s report --store {result.suite.store} --all")
    if runs_list:
        with warnings.catch_warnings():  # resamples where ceiling == weak give NaN medians
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = rep.median_pgr_table(store, runs=runs_list)
        if rows:
            parts.append("median PGR over seeds, per task and method:\n"
                         + rep.for_terminal(rep.median_pgr_markdown(rows) + "\n"
                                            + rep.median_pgr_verdict(rows)))
    bad = [(result.suite.cells[i], o) for i, o in sorted(result.outcomes.items())
           if o.status in ("failed", "busy")]
    if bad:
        parts.append("not finished:\n" + "\n".join(
            "\n".join(textwrap.wrap(f"  {o.status:<7} {c.label}: {o.error}", 100, subsequent_indent=" " * 10,
                                   break_on_hyphens=False, break_long_words=False)) for c, o in bad))
    s = result
    parts.append(f"{len(s.suite.cells)} cells: {s.count('done')} run, {s.count('skipped')} already "
                 f"finished, {s.count('failed')} failed, {s.count('busy')} running elsewhere; "
                 f"{s.seconds:.1f} s")
    return "\n\n".join(parts)
