"""`w2s report --export FILE`: the per-run table as CSV or Parquet. A cell that a spreadsheet
would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with `'`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..metrics import gap_words
from .runs import classification_runs, component_text, is_diagnostic, method_key, method_of, task_of

EXPORT_FORMATS = (".csv", ".parquet")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet evaluates such a cell


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t).isoformat(timespec="seconds") if t else None


def compute_span(runs: list[dict[str, Any]]) -> str:
    """When the runs were computed: first start to last finish, and the sum of their own times
    (less than the span where cells waited, more where they ran in parallel)."""
    started = min(r["started"] for r in runs)
    finished = max(r.get("finished") or r["started"] for r in runs)
    own = sum(r["finished"] - r["started"] for r in runs if r.get("finished"))
    return (f"Computed from {_iso(started)} to {_iso(finished)} ({finished - started:.0f} s wall; "
            f"the runs' own times add up to {own:.0f} s).")


def run_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per finished classification run: what the CSV / Parquet export holds."""
    rows = []
    for r in classification_runs(runs):
        c, m = r["config"], r["metrics"]
        row: dict[str, Any] = {
            "run_id": r["id"], "name": r["name"], "config_hash": r["config_hash"], "status": r["status"],
            "started": _iso(r["started"]), "finished": _iso(r.get("finished")),
            "task": task_of(r), "weak_model": c["weak_model"], "strong_model": c["strong_model"],
            "mode": c["train"]["mode"], "method": method_of(r), "method_detail": method_key(r),
            "loss": component_text(c["loss"]), "seed": c["seed"], "diagnostic": is_diagnostic(r),
            "n_test": m.get("n_test")}
        for model in ("weak", "student", "ceiling"):
            for metric in ("accuracy", "auc"):
                est = m.get(f"{model}_{metric}") or {}
                for part in ("value", "low", "high"):
                    row[f"{model}_{metric}{'' if part == 'value' else '_' + part}"] = est.get(part)
        gap = m.get("gap_accuracy") or {}
        row.update({"gap_accuracy": gap.get("value"), "gap_accuracy_low": gap.get("low"),
                    "gap_accuracy_high": gap.get("high")})
        pgr = m.get("pgr_accuracy") or {}
        reason = pgr.get("reason") or None
        if pgr and pgr.get("value") is None and gap.get("low") is not None:  # the one rule's words
            reason = gap_words(gap["value"], gap["low"], gap["high"])
        row.update({"pgr_accuracy": pgr.get("value"), "pgr_accuracy_low": pgr.get("low"),
                    "pgr_accuracy_high": pgr.get("high"), "pgr_undefined_reason": reason})
        for k in ("agreement", "agreement_on_weak_errors", "agreement_on_weak_correct", "n_weak_errors",
                  "weak_label_accuracy"):
            row[k] = m.get(k)
        row["misfit_holds"] = (m.get("misfit") or {}).get("holds")
        timings = r.get("timings") or {}
        row["seconds"] = float(sum(t.get("seconds", 0.0) for t in timings.values())) if timings else None
        rows.append(row)
    return rows


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula: text starting with =, +, -, @, tab or CR
    gets a leading ' (OWASP's advice); numbers and other values are unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def unwritable(what: str, path: Path | str, e: OSError, flag: str) -> W2SError:
    return W2SError(f"cannot write {what} {str(path)!r}: {e.strerror or e}; pass {flag} a path "
                    "in a folder you can write")


def export(runs: list[dict[str, Any]], path: str | Path) -> tuple[Path, int]:
    """The per-run table as CSV or Parquet (by the file's suffix). Returns (path, rows)."""
    path = Path(path)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise W2SError(f"--export {str(path)!r}: use a .csv or .parquet file name")
    try:
        import pandas as pd
    except ImportError:
        raise W2SError("--export needs pandas (it comes with `datasets`): pip install pandas") from None
    rows = run_rows(runs)
    csv = path.suffix.lower() == ".csv"
    cells = [{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows] if csv else rows
    frame = pd.DataFrame(cells, columns=list(rows[0]) if rows else None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if csv:
            frame.to_csv(path, index=False)
        else:
            try:
                frame.to_parquet(path, index=False)
            except ImportError:
                raise W2SError("--export .parquet needs pyarrow (it comes with `datasets`): "
                               "pip install pyarrow") from None
    except OSError as e:
        raise unwritable("the export", path, e, "--export") from None
    return path, len(rows)
