"""ICL refinement with its controls, at the level of datasets (`w2s report --refinement`).

A refinement family is the icl_refine runs of one model pair that share the refiner and every
option but `k`, `demos` and `eval_size`; within it each run plays a role:

- `naive`: the student trained on the weak labels (the pair's naive runs);
- `k=0`: the refiner relabelling zero-shot, no weak label in any prompt (its own knowledge);
- `k=K weak`: refinement proper, K demonstrations shown with their weak labels;
- `k=K true`: the same demonstrations with their ground-truth labels (an oracle control).

For each family the table gives, per dataset (task) and pooled over datasets, the student's test
accuracy under each role, the paired differences that separate what the weak labels add from
what the refiner knows (k=K weak - k=0, k=K weak - naive, k=0 - naive, k=K true - k=K weak), and
the refiner's own prompting accuracy on its evaluated test examples (zero-shot, K-shot with
true and with weak demonstrations, from the k=K runs' `prompting` record). Every number is a mean
over datasets of means over split seeds of means over training seeds of means over test
examples, with the nested bootstrap of nested.hierarchical_difference (per-dataset columns: the
same without the top level), and says how many datasets it rests on. Differences pair runs
that differ by method alone (report/hierarchy.py), so the same supervisor, ceiling and test set.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from ..nested import Hierarchical, Nested, hierarchical_difference
from ..store import Store
from .hierarchy import nested_differences
from .runs import (
    classification_runs,
    is_diagnostic,
    is_icl_refine,
    method_of,
    pair_of,
    run_predictions,
    task_of,
    unit_key,
)

VARIES = ("k", "demos", "eval_size")  # what tells the roles of one family apart
PROMPTING = (("zero_shot", "refiner zero-shot"), ("fewshot_ground_truth", "refiner {k}-shot, true demos"),
             ("fewshot_weak", "refiner {k}-shot, weak demos"))


def role_of(run: dict[str, Any]) -> str:
    """`k=0`, `k=4 weak` or `k=4 true` for an icl_refine run (from its options, defaults dropped)."""
    opts = run["config"]["method"]["options"]
    k = int(opts.get("k", run["metrics"].get("method", {}).get("k", 4)))
    if k == 0:
        return "k=0"
    return f"k={k} " + ("true" if opts.get("demos") in ("true", True) else "weak")


def families(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, str]]:
    """(model pair, refiner and shared options) -> role -> the method (`runs.method_of`) that plays
    it, `naive` included where the pair has naive runs. Where two methods could play one role (say
    eval_size 0 and 100 at k=0), the one with more runs does."""
    counts: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    naive: dict[str, int] = {}
    for r in classification_runs(runs):
        if is_diagnostic(r):
            continue
        m = method_of(r)
        if m == "naive":
            naive[pair_of(r)] = naive.get(pair_of(r), 0) + 1
        elif is_icl_refine(r):
            opts = {k: v for k, v in r["config"]["method"]["options"].items() if k not in VARIES}
            fam = (pair_of(r), json.dumps(opts, sort_keys=True, default=str))
            by = counts.setdefault(fam, {}).setdefault(role_of(r), {})
            by[m] = by.get(m, 0) + 1
    out: dict[tuple[str, str], dict[str, str]] = {}
    for fam, roles in sorted(counts.items()):
        chosen = {role: max(sorted(ms), key=ms.__getitem__) for role, ms in roles.items()}
        out[fam] = ({"naive": "naive"} if fam[0] in naive else {}) | dict(sorted(chosen.items()))
    return out


def nested_correct(store: Store, runs: list[dict[str, Any]], method: str, pair: str) -> Nested:
    """task -> split unit -> training seed -> the student's per-test-example correctness (0/1),
    for `method`'s runs of `pair` with stored predictions."""
    out: Nested = {}
    for r in classification_runs(runs):
        if method_of(r) != method or pair_of(r) != pair or is_diagnostic(r):
            continue
        p = run_predictions(store, r["id"])
        if p is None:
            continue
        right = ((p["student"] > 0.5) == p["labels"].astype(bool)).astype(np.float64)
        out.setdefault(task_of(r), {}).setdefault(unit_key(r, False), {})[r["config"]["seed"]] = right
    return out


def nested_prompting(runs: list[dict[str, Any]], method: str, pair: str, setting: str
                     ) -> tuple[Nested, bool]:
    """task -> split unit -> training seed -> the refiner's per-example correctness in one
    prompting `setting` (its `prompting.correct` record), and whether every run had that record;
    runs recorded before it give their mean alone (one value per run: the interval then covers
    seeds and datasets, not the evaluated examples)."""
    found: list[tuple[dict[str, Any], Any]] = []
    for r in classification_runs(runs):
        if method_of(r) != method or pair_of(r) != pair:
            continue
        p = r["metrics"].get("method", {}).get("prompting") or {}
        if setting in p:
            found.append((r, p))
    per_example = all(setting in (p.get("correct") or {}) for _, p in found)
    out: Nested = {}
    for r, p in found:
        values = (np.array([c == "1" for c in p["correct"][setting]], dtype=np.float64) if per_example
                  else np.array([float(p[setting][0])]))
        out.setdefault(task_of(r), {}).setdefault(unit_key(r, False), {})[r["config"]["seed"]] = values
    return out, per_example


def _estimates(nested: Nested, rounds: int, confidence: float) -> Optional[dict[str, Any]]:
    """Per dataset and pooled `Hierarchical` estimates of `nested`, None when it is empty."""
    if not nested:
        return None
    per = {task: hierarchical_difference({task: splits}, rounds, confidence)
           for task, splits in sorted(nested.items())}
    return {"datasets": per, "pooled": hierarchical_difference(nested, rounds, confidence)}


def refinement_controls(store: Store, runs: list[dict[str, Any]], rounds: int = 2000,
                        confidence: float = 0.95) -> list[dict[str, Any]]:
    """One entry per refinement family: its pair, refiner, roles, and rows (quantity, kind
    `level` / `difference` / `refiner`, per-dataset and pooled estimates)."""
    out = []
    for (pair, _), roles in families(runs).items():
        some = next(r for r in runs if is_icl_refine(r) and method_of(r) in roles.values())
        lm = some["metrics"]["method"].get("lm", some["config"]["method"]["options"].get("lm", "strong"))
        rows: list[dict[str, Any]] = []
        for role, method in roles.items():
            rows.append({"quantity": f"student: {role}", "kind": "level",
                         "result": _estimates(nested_correct(store, runs, method, pair), rounds, confidence)})
        shots = sorted(int(r.split()[0][2:]) for r in roles if r != "k=0" and r != "naive")
        pairs_wanted: list[tuple[str, str]] = []
        for k in dict.fromkeys(shots):
            pairs_wanted += [(f"k={k} weak", "k=0"), (f"k={k} weak", "naive")]
        pairs_wanted.append(("k=0", "naive"))
        pairs_wanted += [(f"k={k} true", f"k={k} weak") for k in dict.fromkeys(shots)]
        for a, b in pairs_wanted:
            if a in roles and b in roles:
                nested = nested_differences(store, runs, roles[a], roles[b]).get(pair, {})
                rows.append({"quantity": f"{a} - {b}", "kind": "difference",
                             "result": _estimates(nested, rounds, confidence)})
        for k in dict.fromkeys(shots):
            source = roles.get(f"k={k} weak") or roles[f"k={k} true"]
            for setting, name in PROMPTING:
                nested, per_example = nested_prompting(runs, source, pair, setting)
                if nested:
                    rows.append({"quantity": name.format(k=k), "kind": "refiner", "per_example": per_example,
                                 "result": _estimates(nested, rounds, confidence)})
        out.append({"pair": pair, "lm": lm, "roles": roles, "rows": rows})
    return out


def _cell(h: Hierarchical, signed: bool) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{h.value:{f}} [{h.low:{f}}, {h.high:{f}}]"


def controls_markdown(families: list[dict[str, Any]]) -> str:
    """The refinement-controls tables (one per family) with a note on what the numbers are; ''
    without icl_refine runs."""
    from .text import markdown_table, md_escape

    parts = []
    for fam in families:
        tasks = sorted({t for row in fam["rows"] if row["result"] for t in row["result"]["datasets"]})
        header = ["quantity", *tasks, "pooled over datasets", "datasets (+ / -)"]
        cells = []
        for row in fam["rows"]:
            res, signed = row["result"], row["kind"] == "difference"
            if res is None:
                cells.append([row["quantity"], *("-" for _ in tasks), "no paired runs with stored "
                              "predictions", "0"])
                continue
            per = [(_cell(res["datasets"][t], signed) if t in res["datasets"] else "-") for t in tasks]
            pooled: Hierarchical = res["pooled"]
            count = (f"{pooled.datasets} ({pooled.positive} / {pooled.negative})" if signed
                     else str(pooled.datasets))
            name = row["quantity"] + ("" if row.get("per_example", True) else " (per-run means)")
            cells.append([name, *per, _cell(pooled, signed), count])
        roles = ", ".join(f"{role} = {method}" for role, method in fam["roles"].items())
        parts.append(f"### {md_escape(fam['pair'])}, refiner {md_escape(str(fam['lm']))}\n\n"
                     + markdown_table(header, [[md_escape(c) for c in row] for row in cells])
                     + f"\n\nroles: {md_escape(roles)}")
    if not parts:
        return ""
    note = ("Student rows: test accuracy of the student trained on each role's labels; difference "
            "rows pair runs that differ by method alone (same task, split, training seed: same "
            "supervisor, ceiling and test set). k=K weak - k=0 is what the weak labels add to what "
            "the refiner knows alone; k=K true - k=K weak what their errors in the demonstrations "
            "cost. Refiner rows: the refining LM's own accuracy, prompted, on its `eval_size` test "
            "examples per seed. Each number: mean over datasets of the mean over split seeds, "
            "training seeds and test examples; 95% interval from a nested bootstrap (datasets, then "
            "split seeds, then training seeds and test examples); a dataset's own column resamples "
            "below the dataset only. (+ / -): datasets whose own mean difference is above / below 0. "
            "'(per-run means)': runs recorded without per-example prompting results, so that "
            "interval leaves out the evaluated examples' noise.")
    return "\n\n".join(parts) + "\n\n" + note


def command_text(store: Store, runs: list[dict[str, Any]]) -> str:
    """The first block `w2s report --refinement` prints."""
    return ("ICL refinement and its controls, at the level of datasets:\n\n"
            + (controls_markdown(refinement_controls(store, runs)) or "no icl_refine runs"))
