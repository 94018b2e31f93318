"""An executable simulation of the transfer-learning view of weak-to-strong generalisation.

Somerstep et al. (ICLR 2025) argue that fine-tuning a strong model on a weak supervisor's labels
inherits the supervisor's bias, while *refinement* -- the strong model re-deriving each label by
in-context Bayesian inference over the latent concepts it already knows -- transfers the target
concept, with a misalignment that decays exponentially in the number n of in-context examples.
The paper has no synthetic experiment of this; this package is one, small enough to run in
seconds and exact enough to test against closed forms (docs/refinement.md, section 1).

One job per module:

  model.py         the simulated world: TheoryConfig, default grids, concept and bias draws
  posterior.py     the strong model's exact posterior over concepts given demonstrations
  estimators.py    the ridge fits and every estimator on one seed (simulate_seed)
  closed_forms.py  fine-tuning floors, log-odds moments, misalignment rates
  experiments.py   the sweep over seeds and settings (run_sweep, SweepResult), bootstrap CIs
  tables.py        the results as text (format_table, format_floors, format_rates)
  figures.py       the two plots (plot_excess_risk, plot_misalignment)
  cli.py           `w2s theory` (add_arguments, command)

Every public name is importable from `w2sgen.theory` itself.
"""
from .cli import add_arguments, command
from .closed_forms import (
    expected_log_odds,
    finetune_floor,
    log_odds_mgf,
    log_odds_variance,
    misalignment_rate,
    shrink_to_mean_floor,
    source_mean_gap,
    typical_rate,
)
from .estimators import METRICS_BT, METRICS_BTN, RidgePath, ridge, simulate_seed
from .experiments import SweepResult, bootstrap_ci, fit_rate, run_sweep
from .figures import plot_excess_risk, plot_misalignment
from .model import (
    DEFAULT_BIASES,
    DEFAULT_LAMBDAS,
    DEFAULT_NS,
    DEFAULT_TAUS,
    LABELS,
    QUICK_BIASES,
    QUICK_NS,
    QUICK_TAUS,
    TheoryConfig,
    draw_concepts,
    draw_orthogonal_unit,
)
from .posterior import gaussian_loglik, log_misalignment, log_posterior, logsumexp, loo_log_posteriors
from .tables import format_floors, format_rates, format_table

__all__ = [
    "DEFAULT_BIASES", "DEFAULT_LAMBDAS", "DEFAULT_NS", "DEFAULT_TAUS", "LABELS", "METRICS_BT",
    "METRICS_BTN", "QUICK_BIASES", "QUICK_NS", "QUICK_TAUS", "RidgePath", "SweepResult",
    "TheoryConfig", "add_arguments", "bootstrap_ci", "command", "draw_concepts",
    "draw_orthogonal_unit", "expected_log_odds", "finetune_floor", "fit_rate", "format_floors",
    "format_rates", "format_table", "gaussian_loglik", "log_misalignment", "log_odds_mgf",
    "log_odds_variance", "log_posterior", "logsumexp", "loo_log_posteriors", "misalignment_rate",
    "plot_excess_risk", "plot_misalignment", "ridge", "run_sweep", "shrink_to_mean_floor",
    "simulate_seed", "source_mean_gap", "typical_rate",
]
