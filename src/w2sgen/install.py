"""Installing a zoo model: its assets fetched (fetch.py: every source in turn, hashes checked)
into the data home, then its derived copy made."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .refs import resolve
from .zoo import MODELS


def pull(name: str, from_path: Optional[Path] = None) -> None:
    """Install a zoo model's assets (fetch.Asset.pull: every source in turn, hashes checked),
    then make its derived copy, if it has one. `from_path` supplies its first asset by hand."""
    entry = MODELS.get(name)
    for i, asset in enumerate(entry.assets):
        asset.pull(from_path if i == 0 else None)
    if entry.prepare is not None:
        entry.prepare()
    resolve.cache_clear()
    path, _ = entry.locate()
    print(f"{name}: ready at {path}")
