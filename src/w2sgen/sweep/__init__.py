"""`w2s sweep SUITE.yaml`: a grid of experiments, resumable, run in-process or on Ray.

One job per module:

  suite.py      suite files: parsing, validation, the grid's expansion into cells (load_suite)
  checks.py     what would stop a cell before it runs: the run's preflight (preflight.py), with
                missing packages and unreachable hub models named together
  cells.py      one cell: its hash and sharing groups, its Outcome, running it (run_cell)
  executors.py  EXECUTORS (inprocess, ray) and their Options; the order cells run in
  runner.py     the sweep: skip finished cells, run the rest (run_sweep), cell_states
  summary.py    the report a sweep ends with (report)
  plan.py       --dry-run's listing with each cell's estimated time; --max-hours (plan)
  estimates.py  training-memory estimates of a suite's models (memory_estimates) and each
                cell's time on this machine (time_estimates)

Every public name is importable from `w2sgen.sweep` itself.
"""
from .cells import NOT_IN_FEATURES, Cell, Outcome, run_cell
from .checks import HUB_UNREACHABLE, cell_error
from .estimates import ESTIMATE_NOTE, hours, memory_estimates, time_estimates
from .executors import (
    EXECUTORS,
    Executor,
    Options,
    WorkerSetup,
    check_nodes,
    check_reachable,
    dependencies,
    inprocess,
    ordered,
    ray_executor,
)
from .plan import check_budget, plan
from .runner import SweepResult, cell_states, run_sweep
from .suite import (
    AXES,
    COMPONENTS,
    Suite,
    check_only,
    expand,
    flatten,
    load_suite,
    only_of,
    variant,
    without_only,
)
from .summary import report

__all__ = [
    "AXES", "COMPONENTS", "ESTIMATE_NOTE", "EXECUTORS", "HUB_UNREACHABLE", "NOT_IN_FEATURES", "Cell", "Executor",
    "Options", "Outcome", "Suite", "SweepResult", "WorkerSetup", "cell_error", "cell_states",
    "check_budget", "check_nodes", "check_only", "check_reachable", "dependencies", "expand",
    "flatten", "inprocess", "hours", "load_suite", "memory_estimates", "only_of", "ordered", "plan",
    "ray_executor", "report", "run_cell", "run_sweep", "time_estimates", "variant", "without_only",
]
