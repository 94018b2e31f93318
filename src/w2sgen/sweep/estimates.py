"""Training-memory estimates of the models a suite trains, from its file alone (before any
cell runs, with no GPU needed): `benchmarks/memory.py`."""
from __future__ import annotations

import copy
import itertools
from typing import Any

from ..config import build_config, read_yaml_mapping, set_key
from ..methods import model_roles
from .suite import variant


def memory_estimates(path: str, auto_precision: str = "bf16") -> list[Any]:
    """The estimate of every model each pair of a suite trains (weak, the method's own models
    such as a bootstrap ladder, strong), on a GPU where `precision: auto` means `auto_precision` (bf16 on A100/H100-class
    GPUs). Hub models in PUBLISHED are estimated from those values, others from their configs.
    The cells are expanded as `w2s sweep` does, without its check that the assets exist."""
    from ..memory import PUBLISHED, Row, arch_of, estimate, published, settings_of
    from ..models import resolve
    from ..train import MODES

    raw = read_yaml_mapping(path, "suite file")
    base, grid = raw.get("base") or {}, raw.get("grid") or {}
    pairs = [variant("pairs", v, path) for v in grid.get("pairs") or [{}]]
    methods = [variant("methods", v, path) for v in grid.get("methods") or [{"name": "base"}]]
    models: dict[tuple[str, str], Any] = {}  # (pair, model) -> cfg, first seen
    for (pair, p_over), (_, m_over) in itertools.product(pairs, methods):
        cell = copy.deepcopy(base)
        for key, value in {**p_over, **m_over}.items():
            set_key(cell, key, copy.deepcopy(value))
        cfg = build_config(cell)
        for name, _, _ in model_roles(cfg, str):  # the method's own models too
            models.setdefault((pair, name), cfg)
    rows = []
    for (pair, name), cfg in models.items():
        arch = published(name) if name in PUBLISHED else arch_of(resolve(name))
        precision = auto_precision if cfg.train.precision == "auto" else cfg.train.precision
        formula = MODES.get(cfg.train.mode).memory_estimate  # None: the mode declares none
        est = None if formula is None else estimate(arch, **settings_of(cfg, "cuda", precision, formula))
        rows.append((pair, arch.params, Row(pair, name, est)))
    order = list(dict.fromkeys(pair for pair, _, _ in rows))  # pairs as listed, models by size
    return [row for _, _, row in sorted(rows, key=lambda r: (order.index(r[0]), r[1]))]
