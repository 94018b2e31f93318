"""weak_train / transfer / test splits: disjoint, exact, deterministic, order-independent."""
from __future__ import annotations

import random

import pytest

from w2sgen.config import SplitsConfig
from w2sgen.errors import W2SError
from w2sgen.splits import SPLITS, make_splits
from w2sgen.tasks import Example


def ungrouped(n: int = 300) -> list[Example]:
    return [Example(f"ex{i}", f"text {i}", i % 2) for i in range(n)]


def grouped() -> list[Example]:
    """200 singletons plus 50 questions with two candidates each (300 examples)."""
    out = [Example(f"s{i}", f"text {i}", i % 2) for i in range(200)]
    for q in range(50):
        out += [Example(f"q{q}/{c}", f"question {q}", c, group=f"q{q}") for c in (0, 1)]
    return out


def ids(splits) -> dict[str, set[str]]:
    return {s: {e.id for e in getattr(splits, s)} for s in SPLITS}


def assignment(splits) -> dict[str, str]:
    return {e.id: s for s in SPLITS for e in getattr(splits, s)}


def test_exact_sizes_and_disjoint_ids():
    sp = make_splits(ungrouped(), SplitsConfig(100, 80, 60, seed=0), "t")
    got = ids(sp)
    assert [len(got[s]) for s in SPLITS] == [100, 80, 60]
    assert not got["weak_train"] & got["transfer"]
    assert not got["weak_train"] & got["test"]
    assert not got["transfer"] & got["test"]
    assert len(got["weak_train"] | got["transfer"] | got["test"]) == 240
    for s in SPLITS:  # both classes, and roughly balanced since the input is
        labels = [e.label for e in getattr(sp, s)]
        assert 0.3 < sum(labels) / len(labels) < 0.7


def test_fraction_sizes():
    sp = make_splits(ungrouped(300), SplitsConfig(0.5, 0.2, 0.3, seed=0), "t")
    assert [len(getattr(sp, s)) for s in SPLITS] == [150, 60, 90]
    sp = make_splits(ungrouped(300), SplitsConfig(0.1, 100, 0.25, seed=0), "t")
    assert [len(getattr(sp, s)) for s in SPLITS] == [30, 100, 75]


def test_groups_stay_whole():
    sp = make_splits(grouped(), SplitsConfig(100, 100, 80, seed=1), "t")
    groups = {s: {e.group or e.id for e in getattr(sp, s)} for s in SPLITS}
    assert not groups["weak_train"] & groups["transfer"]
    assert not groups["weak_train"] & groups["test"]
    assert not groups["transfer"] & groups["test"]
    where = assignment(sp)
    for q in range(50):  # both candidates of a question land together (or neither is used)
        assert where.get(f"q{q}/0") == where.get(f"q{q}/1")
    for s in SPLITS:  # a split overshoots its size by at most one group
        assert len(getattr(sp, s)) - getattr(SplitsConfig(100, 100, 80), s) in (0, 1)


def test_deterministic_for_a_seed():
    a = make_splits(grouped(), SplitsConfig(100, 100, 80, seed=3), "t")
    b = make_splits(grouped(), SplitsConfig(100, 100, 80, seed=3), "t")
    for s in SPLITS:
        assert [e.id for e in getattr(a, s)] == [e.id for e in getattr(b, s)]


def test_split_seed_changes_assignment():
    a = assignment(make_splits(ungrouped(), SplitsConfig(100, 100, 100, seed=0), "t"))
    b = assignment(make_splits(ungrouped(), SplitsConfig(100, 100, 100, seed=1), "t"))
    moved = sum(a[i] != b[i] for i in a)
    assert moved > 100  # a fresh random 3-way split moves about 2/3 of 300


def test_split_does_not_depend_on_input_order():
    rows = grouped()
    ref = assignment(make_splits(rows, SplitsConfig(90, 90, 90, seed=5), "t"))
    for k in range(3):
        shuffled = rows[:]
        random.Random(k).shuffle(shuffled)
        assert assignment(make_splits(shuffled, SplitsConfig(90, 90, 90, seed=5), "t")) == ref


def test_task_too_small_names_the_counts():
    with pytest.raises(W2SError) as e:
        make_splits(ungrouped(300), SplitsConfig(200, 100, 50), "tiny")
    msg = str(e.value)
    assert "'tiny'" in msg and "300 examples" in msg and "350" in msg
    assert "weak_train=200" in msg and "test=50" in msg


def test_fractions_over_one_are_too_many():
    with pytest.raises(W2SError, match="asks? for 330"):
        make_splits(ungrouped(300), SplitsConfig(0.5, 0.3, 0.3), "t")


def test_fraction_rounding_to_zero_is_an_error():
    with pytest.raises(W2SError) as e:
        make_splits(ungrouped(300), SplitsConfig(0.5, 0.3, 0.001), "t")
    assert "splits.test" in str(e.value) and "empty" in str(e.value)


def test_big_groups_run_out():
    rows = [Example(f"g{g}/{i}", "x", i % 2, group=f"g{g}") for g in range(3) for i in range(10)]
    with pytest.raises(W2SError, match="not enough example groups"):
        make_splits(rows, SplitsConfig(12, 12, 5), "t")


def test_split_with_one_class_is_an_error():
    rows = [Example(f"ex{i}", "x", int(i == 0)) for i in range(100)]  # one positive
    with pytest.raises(W2SError) as e:
        make_splits(rows, SplitsConfig(10, 10, 10), "lopsided")
    assert "'lopsided'" in str(e.value) and "only class 0" in str(e.value)


def test_selection_pool_is_weak_train_and_refuses_a_protected_test_overlap():
    from w2sgen.splits import selection_pool

    ex = ungrouped(300)
    chosen = make_splits(ex, SplitsConfig(weak_train=100, transfer=100, test=100, seed=0), "t")
    pool = selection_pool(chosen, "t")
    assert [e.id for e in pool] == [e.id for e in chosen.weak_train]
    # the same order cut 50 / 20 / 200: its test holds positions 70-270, so chosen's transfer
    # (positions 100-200) - the old selection pool - is test there; weak_train (0-100) is not
    # wholly clear either: positions 70-100 of the order are test of the other cut
    other = make_splits(ex, SplitsConfig(weak_train=50, transfer=20, test=200, seed=0), "t")
    overlap = {e.id for e in chosen.weak_train} & {e.id for e in other.test}
    assert len(overlap) == 30
    with pytest.raises(W2SError, match=r"selection pool shares 30 example\(s\) with the test split "
                                        r"of protected splits 1 .*weak_train"):
        selection_pool(chosen, "t", [other])
    # a cut whose weak_train comes first and is as large: clear
    same_head = make_splits(ex, SplitsConfig(weak_train=100, transfer=50, test=150, seed=0), "t")
    assert selection_pool(chosen, "t", [same_head]) == chosen.weak_train


def test_selection_pool_refuses_a_shared_group():
    from w2sgen.splits import check_selection_pool

    a = Example("q1/0", "question", 0, group="q1")
    b = Example("q1/1", "question", 1, group="q1")
    with pytest.raises(W2SError, match="shares 1 example"):
        check_selection_pool([a], [b], "t", "x")
    check_selection_pool([a], [Example("q2/0", "other", 0, group="q2")], "t", "x")
