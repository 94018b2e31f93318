"""The two small things every layer names: a component chosen by name with its options, and the
content hash behind run identities and cache keys. A leaf module, so that the component
packages (tasks, methods, losses, training modes), the store and the config can all use them
without importing each other; `config` builds and validates whole experiments from them."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Component:
    """A registry entry chosen by name, with keyword options for its factory."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


def stable_hash(obj: Any, n: int = 16) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no spaces), its first `n` hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]
