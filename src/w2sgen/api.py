"""The Python API: `w2sgen.run(...)` runs one experiment, as `w2s run` does, and returns a
`Result` (metrics with intervals, predictions, paths). docs/api.md is its guide.

    import w2sgen
    result = w2sgen.run("configs/my.yaml", seed=1, train={"epochs": 5})
    result = w2sgen.run(examples=df, weak_model="minilm-l6", **{"splits.test": 0.4})

Importing w2sgen does not import torch; the first `run` does.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .config import ExperimentConfig, read_yaml_mapping, set_key
from .errors import W2SError
from .metrics import PGR, Estimate

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ConfigLike = Union[ExperimentConfig, dict[str, Any], str, Path, None]


@dataclass
class Result:
    """One finished run: its id, config and metrics (as `w2s report` reads them), and where its
    files are. `weak`, `student`, `ceiling`: test accuracy with its bootstrap interval; `pgr`:
    performance gap recovered (undefined where the ceiling-weak gap's interval includes 0)."""

    run_id: int
    config: ExperimentConfig
    metrics: dict[str, Any]
    timings: dict[str, Any]
    store: Path
    _predictions: Optional[dict[str, Any]] = field(default=None, repr=False)

    @property
    def weak(self) -> Estimate:
        return Estimate(**self.metrics["weak_accuracy"])

    @property
    def student(self) -> Estimate:
        return Estimate(**self.metrics["student_accuracy"])

    @property
    def ceiling(self) -> Estimate:
        return Estimate(**self.metrics["ceiling_accuracy"])

    @property
    def pgr(self) -> PGR:
        return PGR(**self.metrics["pgr_accuracy"])

    @property
    def artifacts(self) -> Path:
        """The run's folder: config.yaml, metrics.json, predictions.npz, and any plots."""
        return self.store / "artifacts" / str(self.run_id)

    @property
    def paths(self) -> dict[str, Path]:
        a = self.artifacts
        return {"store": self.store, "artifacts": a, "config": a / "config.yaml",
                "metrics": a / "metrics.json", "predictions": a / "predictions.npz"}

    @property
    def predictions(self) -> dict[str, np.ndarray]:
        """Test predictions: `ids`, `labels`, and the probability of label 1 from the `weak`
        supervisor, the `student` and the `ceiling`, aligned by example."""
        if self._predictions is None:
            import numpy as np

            with np.load(self.paths["predictions"]) as z:
                self._predictions = {k: z[k] for k in z.files}
        return self._predictions

    def predictions_frame(self) -> pd.DataFrame:
        """`predictions` as a pandas DataFrame, one row per test example."""
        import pandas as pd

        return pd.DataFrame(self.predictions)

    def table(self) -> str:
        """The table `w2s run` prints, and the plain-words verdict under it."""
        from . import report

        return report.table([self._run()])

    @property
    def figures(self) -> list[Path]:
        """The run's figures, drawn as it finished: results.png and curves.png (SVGs beside)."""
        return [p for p in (self.artifacts / "results.png", self.artifacts / "curves.png") if p.is_file()]

    def plot(self, path: Union[str, Path, None] = None) -> Optional[Path]:
        """The accuracy figure (PNG, with an SVG beside it); default in the run's folder."""
        from . import report

        return report.plot([self._run()], Path(path) if path else self.artifacts / "results.png")

    def _run(self) -> dict[str, Any]:
        return {"id": self.run_id, "config": self.config.to_dict(), "metrics": self.metrics}

    def __repr__(self) -> str:
        return f"Result(run {self.run_id}, store {str(self.store)!r})\n{self.table()}"

    def _repr_markdown_(self) -> str:  # a notebook shows the table as text
        return f"```\n{self!r}\n```"


def _component_raw(d: dict[str, Any]) -> dict[str, Any]:
    return {"name": d["name"], **d["options"]}


def raw_config(config: ConfigLike) -> dict[str, Any]:
    """A config as the raw mapping `build_config` reads (what a YAML file holds)."""
    if config is None:
        return {}
    if isinstance(config, ExperimentConfig):
        d = config.to_dict()
        for key in ("task", "method", "loss"):
            d[key] = _component_raw(d[key])
        d["weak_train"] = copy.deepcopy(config.weak_train)
        return d
    if isinstance(config, dict):
        return copy.deepcopy(config)
    if isinstance(config, (str, Path)):
        return read_yaml_mapping(config, "config file")
    raise W2SError(f"config must be an ExperimentConfig, a mapping of keys or a YAML path, got "
                   f"{type(config).__name__}")


def merge(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` (dotted, or with `__` for a dot: train__epochs) in `raw`; a mapping value is
    merged key by key (train={'epochs': 5} keeps the other train keys)."""
    key = key.replace("__", ".")
    if isinstance(value, dict) and key not in ("weak_train",):
        for k, v in value.items():
            merge(raw, f"{key}.{k}", v)
        return
    set_key(raw, key, value)


def run(config: ConfigLike = None, /, *, examples: Any = None, task_label: Optional[str] = None,
        text_column: str = "text", label_column: str = "label", quiet: bool = False,
        **overrides: Any) -> Result:
    """Run one weak-to-strong experiment and return its `Result`.

    config: an ExperimentConfig, a mapping of config keys, a YAML path, or None (the default
    experiment). overrides: config keys on top (`seed=1`, `train={"epochs": 5}`,
    `train__epochs=5`, `**{"splits.test": 0.4}`); `w2s config --keys` lists every key.
    examples: the task's data in memory instead of `task` - a list of records ({"text": ...,
    "label": 0 or 1}, optional id, group, text_pair) or Examples, a pandas DataFrame or a
    datasets.Dataset; the run is keyed by their content, and `task_label` names them in reports.
    Every step is cached in the store (`store`, default ./runs) as `w2s run` caches it.
    """
    from .store import Store

    raw = raw_config(config)
    for key, value in overrides.items():
        merge(raw, key, value)
    if examples is not None:
        from .tasks import memory

        key = memory.register(memory.to_examples(examples, text_column, label_column))
        raw["task"] = {"name": memory.NAME, "key": key, "label": task_label or memory.NAME}
    elif task_label is not None:
        raise W2SError("task_label names in-memory examples; pass examples=... with it")
    from . import pipeline, report
    from .validate import build_config  # here: checking a config imports torch

    cfg = build_config(raw)

    art = Path(cfg.store) / "artifacts"
    out = pipeline.run(cfg, Store(cfg.store), quiet=quiet,
                       figures=lambda row: report.run_figures(row, art / str(row["id"])))
    return Result(out["run_id"], out["config"], out["metrics"], out["timings"], Path(cfg.store).resolve())
