"""weak_train / transfer / test, disjoint by example id (and group), stable under a seed.

Groups are ordered by a hash of (seed, group), so an example's split depends only on its
group id, the seed and the sizes - not on the order rows arrive in or on the other examples.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .config import SplitsConfig
from .errors import W2SError
from .example import Example
from .tasks import predefined_splits

SPLITS = ("weak_train", "transfer", "test")


@dataclass
class Splits:
    weak_train: list[Example]
    transfer: list[Example]
    test: list[Example]

    def __post_init__(self) -> None:
        ids = [set(e.id for e in getattr(self, s)) for s in SPLITS]
        groups = [set(e.group or e.id for e in getattr(self, s)) for s in SPLITS]
        for a in range(3):
            for b in range(a + 1, 3):
                assert not ids[a] & ids[b], "splits share example ids"
                assert not groups[a] & groups[b], "splits share groups"


def _count(size: Union[int, float], total: int) -> int:
    return int(size * total + 1e-9) if isinstance(size, float) else size  # floor: fractions summing to 1 fit


def make_splits(examples: list[Example], cfg: SplitsConfig, task: str) -> Splits:
    """The task's own splits where its examples name them (the testbed's files), else
    `cfg`'s sizes drawn by hashed group."""
    fixed = predefined_splits(examples, task)
    if fixed is not None:
        return Splits(**fixed)
    total = len(examples)
    want = {s: _count(getattr(cfg, s), total) for s in SPLITS}
    empty = [s for s in SPLITS if want[s] < 1]
    if empty:
        raise W2SError(f"task {task!r} has {total} examples, so splits.{empty[0]}="
                       f"{getattr(cfg, empty[0])!r} gives an empty split; use a larger size")
    need = sum(want.values())
    if need > total:
        raise W2SError(f"task {task!r} has {total} examples but the splits ask for {need} "
                       f"({', '.join(f'{k}={v}' for k, v in want.items())}); lower splits.* "
                       "or give fractions, e.g. splits.test=0.4")
    by_group: dict[str, list[Example]] = {}
    for e in examples:
        by_group.setdefault(e.group or e.id, []).append(e)
    key = lambda g: hashlib.sha256(f"{cfg.seed}\x1f{g}".encode()).digest()  # noqa: E731
    order = sorted(by_group, key=key)
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    it = iter(order)
    for s in SPLITS:
        while len(out[s]) < want[s]:
            g = next(it, None)
            if g is None:
                raise W2SError(f"task {task!r}: not enough example groups to fill split {s!r}; "
                               "lower splits.*")
            out[s].extend(by_group[g])
    for s in SPLITS:
        classes = Counter(e.label for e in out[s])
        if len(classes) < 2:
            raise W2SError(f"task {task!r}: split {s!r} has only class {next(iter(classes))}; "
                           "use a larger split or a task with both classes")
    return Splits(**out)


def selection_pool(splits: Splits, task: str, protect: Sequence[Splits] = ()) -> list[Example]:
    """The examples a choice made before a run may read (which refiner, k, calibration): the
    weak_train split only, refused in one line when any of its ids is a test example of these
    splits or of `protect` (the splits of the runs the choice is for, e.g. another size or
    seed, where weak_train of one cut can be test of the other)."""
    pool = splits.weak_train
    for i, other in enumerate((splits, *protect)):
        check_selection_pool(pool, other.test, task, "these splits" if i == 0 else f"protected splits {i}")
    return pool


def check_selection_pool(pool: Sequence[Example], test: Sequence[Example], task: str, what: str) -> None:
    """One line when the selection pool shares an example id (or group) with a test split."""
    test_ids = {e.id for e in test} | {e.group for e in test if e.group}
    shared = [e.id for e in pool if e.id in test_ids or (e.group and e.group in test_ids)]
    if shared:
        raise W2SError(f"task {task!r}: the selection pool shares {len(shared)} example(s) with the "
                       f"test split of {what} (e.g. {shared[0]!r}); draw choices from weak_train "
                       "of the run's own splits only")


@dataclass(frozen=True)
class Part:
    """The examples of one split, or those at the given positions of it."""

    split: str
    index: Optional[tuple[int, ...]] = None

    def examples(self, splits: Splits) -> list[Example]:
        ex = getattr(splits, self.split)
        return ex if self.index is None else [ex[i] for i in self.index]


def labels(examples: list[Example]) -> np.ndarray:
    return np.array([e.label for e in examples], dtype=np.float32)


def hold_out(examples: list[Example], size: Union[int, float], seed: int, what: str
             ) -> tuple[list[int], list[int]]:
    """(kept, held-out) positions of `examples`, each in their order: whole groups, ordered by a
    hash of (seed, group) as the splits are, held out until at least `size` examples (a count,
    or a fraction < 1 of them) are. `what` names the setting in errors."""
    total = len(examples)
    want = _count(size, total)
    if want < 2 or want > total - 2:
        raise W2SError(f"{what}={size!r} holds out {want} of {total} training examples; it must "
                       f"leave at least 2 on each side (e.g. {what}={max(2, total // 5)})")
    positions: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        positions.setdefault(e.group or e.id, []).append(i)
    order = sorted(positions, key=lambda g: hashlib.sha256(f"{seed}\x1fhold_out\x1f{g}".encode()).digest())
    held: list[int] = []
    for g in order:
        if len(held) >= want:
            break
        held.extend(positions[g])
    if len(held) > total - 2:
        raise W2SError(f"{what}={size!r}: the examples' groups leave fewer than 2 to train on; "
                       "lower it")
    chosen = set(held)
    return [i for i in range(total) if i not in chosen], sorted(held)
