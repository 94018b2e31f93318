"""One small registry class, instantiated once per extension point (models, tasks, losses, ...).

The registries are what the config validator, the CLI listings and the pipeline read, so adding
a component is one decorated definition.

Plugins: code outside the package adds components through an entry-point group per registry
(`w2sgen.methods`, `w2sgen.losses`, `w2sgen.tasks`, ... see GROUPS). An entry point names either
the component itself (`my_loss = my_pkg.losses:my_loss`, registered under the entry point's
name) or a module that registers its components with the decorators when imported. Plugins load
the first time a registry is looked into, so `w2s run`, `w2s sweep` and the config checks see
them like built-in components; CONTRIBUTING.md has a worked example.
"""
from __future__ import annotations

import difflib
import importlib.metadata as md
import types
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import W2SError

T = TypeVar("T")

# entry-point group of each registry, by its kind
GROUPS = {"method": "w2sgen.methods", "loss": "w2sgen.losses", "task": "w2sgen.tasks",
          "training mode": "w2sgen.modes", "model": "w2sgen.models", "backend": "w2sgen.backends",
          "logger": "w2sgen.loggers", "executor": "w2sgen.executors",
          "generative method": "w2sgen.generative_methods",
          "generative task": "w2sgen.generative_tasks"}


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str | None = None):
        self.kind = kind
        self.group = group or GROUPS.get(kind) or f"w2sgen.{kind.replace(' ', '_')}"
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # a former name -> the name it is registered under
        self._plugins_loaded = False

    def _plugins(self) -> dict[str, T]:
        """The registered items, after loading this registry's plugins (once)."""
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first: a plugin module importing us must not recurse
            for ep in md.entry_points(group=self.group):
                try:
                    obj = ep.load()
                except Exception as e:  # noqa: BLE001 - a broken plugin can raise anything
                    dist = getattr(ep.dist, "name", "?")
                    raise W2SError(f"{self.kind} plugin {ep.name!r} ({ep.value}, from package "
                                   f"{dist}) failed to load: {type(e).__name__}: {e}; fix or "
                                   "uninstall that package") from None
                if not isinstance(obj, types.ModuleType) and ep.name not in self._items:
                    self._items[ep.name] = obj  # the entry point is the component itself
        return self._items

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def alias(self, former: str, name: str) -> None:
        """Accept `former` (a name an item had before) for `name`; identities hold `name`."""
        if former in self._items or former in self._aliases:
            raise ValueError(f"{self.kind} {former!r} is registered twice")
        self._aliases[former] = name

    def canonical(self, name: str) -> str:
        """The registered name for `name` (itself unless it is a former name)."""
        return self._aliases.get(name, name)

    def former_names(self, name: str) -> list[str]:
        return sorted(k for k, v in self._aliases.items() if v == name)

    def get(self, name: str) -> T:
        try:
            return self._plugins()[self.canonical(name)]
        except KeyError:
            raise W2SError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        items = self._plugins()
        close = difflib.get_close_matches(name, items, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; available: {', '.join(sorted(items))}"

    def __contains__(self, name: object) -> bool:
        return (self.canonical(name) if isinstance(name, str) else name) in self._plugins()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._plugins()))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._plugins().items())
