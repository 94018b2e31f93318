"""One cell of a sweep: its config and identity (hash, the work it shares with other cells),
its outcome, and running it.

Kill -9 safety: each cell is one `pipeline.run`, whose steps are cached by atomic renames and
whose run row flips to `done` in one transaction after everything else is written; a cell
killed before that stays `running` with its owner process recorded, so it never counts as
finished, and the next sweep marks it `killed` (its process is gone) and runs it again. Reports
read only `done` rows, the newest per hash. A cell is claimed (store.start_run(exclusive=True))
in the transaction that checks for a finished or live run of its hash, so two sweeps sharing a
store never run one cell twice.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import ExperimentConfig, stable_hash
from ..errors import W2SError
from ..runs import NOT_SHARED

# What a cell's features do not depend on, besides what its supervisor and ceiling do not (NOT_SHARED).
NOT_IN_FEATURES = ("seed", "train")


@dataclass
class Cell:
    index: int
    label: str
    cfg: ExperimentConfig

    @functools.cached_property
    def hash(self) -> str:  # resolving a config for the machine is not free: once per cell
        return self.cfg.hash()

    @property
    def group(self) -> str:
        """Cells with the same group share weak supervisor and ceiling (and features)."""
        d = self.cfg.to_dict()
        return stable_hash({k: v for k, v in d.items() if k not in NOT_SHARED})

    @property
    def features_group(self) -> str:
        """Cells with the same features group share the extracted features."""
        d = self.cfg.to_dict()
        return stable_hash({k: v for k, v in d.items() if k not in NOT_SHARED + NOT_IN_FEATURES})


@dataclass
class Outcome:
    index: int
    status: str  # done | skipped | failed | busy
    run_id: int | None = None
    seconds: float = 0.0
    computed: list[str] = field(default_factory=list)  # steps not found in the cache
    error: str = ""
    node: str = ""  # the Ray node that ran it (first 8 digits of its id), when one did


def run_cell(cell: Cell, store_root: str) -> Outcome:
    """Run one cell unless a finished run of it exists or another live process is running it:
    the store checks both in the transaction that claims the cell. A failure is returned, not
    raised, so the sweep goes on."""
    from .. import pipeline
    from ..store import RunTaken, Store

    t0 = time.perf_counter()
    try:
        result = pipeline.run(cell.cfg, Store(store_root), quiet=True, exclusive=True,
                              figures=tracker_figures(store_root))
    except RunTaken as taken:
        if taken.status == "done":
            return Outcome(cell.index, "skipped", taken.run_id)
        return Outcome(cell.index, "busy", taken.run_id,
                       error=f"run {taken.run_id} is in progress in process {taken.owner}")
    except Exception as e:  # noqa: BLE001 -- recorded as failed by the run; the sweep goes on
        msg = str(e) if isinstance(e, W2SError) else f"{type(e).__name__}: {e}"
        return Outcome(cell.index, "failed", seconds=time.perf_counter() - t0,
                       error=msg.strip().splitlines()[0] if msg.strip() else type(e).__name__)
    computed = [k for k, t in result["timings"].items()
                if not t["cached"] and k not in ("data", "evaluate")]
    return Outcome(cell.index, "done", result["run_id"], time.perf_counter() - t0, computed)


def tracker_figures(store_root: str) -> Optional[Callable[[dict[str, Any]], list[Path]]]:
    """A cell's figures, drawn only where a tracker (W&B, MLflow) will receive them."""
    from .. import loggers

    if not loggers.selected():
        return None
    from .. import report

    art = Path(store_root) / "artifacts"
    return lambda row: report.run_figures(row, art / str(row["id"]))
