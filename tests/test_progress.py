"""Progress on long work: log lines when stderr is not a terminal, tqdm when it is."""
from __future__ import annotations

import io

import pytest

from w2sgen import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_interval_with_counts_and_time_left(monkeypatch):
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    clock = iter([0.0, 30.0, 60.0, 90.0])
    monkeypatch.setattr(progress, "clock", lambda: next(clock))
    with progress.bar(4, "train student", "step", file=out) as bar:
        bar.update(1)  # 30 s for 1 of 4: about 90 s left
        bar.update(2)  # 60 s for 3 of 4: about 20 s left
        bar.update(1)
    assert out.getvalue().splitlines() == [
        "  train student: 1/4 steps (25%) in 30 s, about 1 min 30 s left",
        "  train student: 3/4 steps (75%) in 1 min 00 s, about 20 s left",
        "  train student: 4/4 steps (100%) in 1 min 30 s"]


def test_lines_wait_for_the_interval(monkeypatch):
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "60")
    out = io.StringIO()
    times = iter([0.0, 10.0, 59.0, 61.0, 70.0])
    monkeypatch.setattr(progress, "clock", lambda: next(times))
    bar = progress.bar(100, "features", "example", file=out)
    for _ in range(4):
        bar.update(10)
    assert out.getvalue().splitlines() == ["  features: 30/100 examples (30%) in 1 min 01 s, "
                                           "about 2 min 22 s left"]


def test_quiet_is_silent_and_a_terminal_gets_tqdm(monkeypatch):
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    with progress.bar(3, "x", "step", quiet=True, file=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""
    term = Terminal()
    with progress.bar(3, "icl refine", "prompt", file=term) as bar:
        bar.update(3)
    assert "icl refine" in term.getvalue() and "3/3" in term.getvalue()


def test_iteration_postfix_and_write(monkeypatch):
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    bar = progress.bar(desc="seeds", unit="seed", iterable=[1, 2], file=out)
    bar.set_postfix_str("8 settings/seed")
    assert list(bar) == [1, 2]
    bar.write("a line")
    assert out.getvalue().splitlines()[-1] == "a line"
    assert out.getvalue().splitlines()[1].startswith("  seeds: 2/2 seeds (100%) in ")
    assert out.getvalue().splitlines()[1].endswith("[8 settings/seed]")


@pytest.mark.parametrize("value, seconds", [("5", 5.0), ("-1", 0.0), ("soon", 60.0), (None, 60.0)])
def test_the_interval_comes_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("W2S_PROGRESS_SECONDS", raising=False)
    else:
        monkeypatch.setenv("W2S_PROGRESS_SECONDS", value)
    assert progress.interval() == seconds


def test_durations_read_as_a_person_writes_them():
    assert [progress.duration(s) for s in (3.4, 65, 3599.6, 3725)] == [
        "3 s", "1 min 05 s", "1 h 00 min", "1 h 02 min"]


def test_a_resumed_count_starts_at_initial_and_its_rate_counts_only_new_work(monkeypatch):
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    times = iter([0.0, 100.0])
    monkeypatch.setattr(progress, "clock", lambda: next(times))
    bar = progress.bar(10, "sweep", "cell", initial=6, file=out)
    bar.update(1)  # 1 new cell in 100 s, 3 to go: about 300 s left (not 100 * 3 / 7)
    assert out.getvalue().splitlines() == ["  sweep: 7/10 cells (70%) in 1 min 40 s, about 5 min 00 s left"]


def test_a_sweeps_time_left_counts_cached_shared_steps_as_done(monkeypatch):
    """Two seeds (groups: one weak supervisor and ceiling each) of three methods on one task and
    model pair (one features group, two models): the first cell extracts 2 x 3 features and
    trains 3 models (9 steps), the first of the second seed trains 3, the others 1 each (their
    shared steps are cached), so after the first cell the time left is for 7 steps, not for 5
    cells of the first cell's length."""
    from types import SimpleNamespace

    from w2sgen.spec import Component
    from w2sgen.sweep.runner import Work

    cfg = SimpleNamespace(weak_model="w", strong_model="s", method=Component("naive"))
    cells = [SimpleNamespace(index=i, group="ab"[i // 3], features_group="f", cfg=cfg) for i in range(6)]
    work = Work(cells, todo={c.index for c in cells})
    assert (work.total, work.done) == (16, 0)
    monkeypatch.setenv("W2S_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    times = iter([0.0, 90.0])
    monkeypatch.setattr(progress, "clock", lambda: next(times))
    bar = progress.bar(work.total, "sweep", "step", initial=work.done, file=out)
    bar.update(work.finish(cells[0]))  # 9 steps in 90 s: 10 s a step, 7 to go
    assert out.getvalue().splitlines() == ["  sweep: 9/16 steps (56%) in 1 min 30 s, about 1 min 10 s left"]
    assert [work.finish(c) for c in cells[1:]] == [1, 1, 3, 1, 1] and work.done == work.total
    # resumed with a finished cell in group a: its supervisor, ceiling and features are cached
    resumed = Work(cells, todo={1, 2, 3, 4, 5})
    assert (resumed.done, resumed.total, resumed.finish(cells[1]), resumed.finish(cells[3])) == (9, 16, 1, 3)
