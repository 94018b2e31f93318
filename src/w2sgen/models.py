"""The model zoo's public names, in one place: the catalogue (zoo.py: MODELS, each model's
assets and pinned sha256), names resolved to ModelRefs (refs.py: zoo names, local folders, hub
ids), loading a resolved model (loading.py) and installing a zoo model (install.py).

Every name below is importable from here (`from w2sgen.models import load, resolve`).
"""
from __future__ import annotations

from .install import pull
from .loading import DEQUANTISED_FORMAT, dequantised_dir, load, load_tokenizer, source
from .refs import ModelRef, local_ref, resolve
from .zoo import MODELS, Kind, ZooEntry

__all__ = ["DEQUANTISED_FORMAT", "MODELS", "Kind", "ModelRef", "ZooEntry", "dequantised_dir", "load",
           "load_tokenizer", "local_ref", "pull", "resolve", "source"]
