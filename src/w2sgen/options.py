"""Options checked from signatures: a component declares its options once, typed and bounded.

A loss, method, task or backend is a function whose keyword-only parameters are its options:

    def logconf(*, alpha_max: Annotated[float, Range(0, 1)] = 0.75,
                balance: Literal["prior", "logodds"] = "prior") -> LossFn: ...

and the config's dataclass fields are declared the same way. `check` reads the annotation and
checks a value's type (int, float, bool, str, Literal, Optional, list[...], unions) and bounds
when the config is built, so `w2s run --dry-run`-like paths and sweeps reject a bad option before
anything trains, with one line naming the key, what it must be and what it got. Nothing
re-checks its own options in its body.
"""
from __future__ import annotations

import inspect
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from .errors import W2SError, shown


@dataclass(frozen=True)
class Range:
    """Bounds of a number: lo <= x <= hi, strict where `lo_open` / `hi_open`."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        if self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi):
            return False
        return True

    def text(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {num(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {num(self.hi)}")
        return " and ".join(parts)


def Ge(x: float) -> Range:  # noqa: N802 - reads as a bound in an annotation
    return Range(lo=x)


def Gt(x: float) -> Range:  # noqa: N802
    return Range(lo=x, lo_open=True)


def Le(x: float) -> Range:  # noqa: N802
    return Range(hi=x)


PositiveInt = Annotated[int, Ge(1)]
Fraction = Annotated[float, Range(0, 1)]  # a share in [0, 1]


@dataclass(frozen=True)
class NonEmpty:
    """A list or string with at least one element."""


@dataclass(frozen=True)
class Check:
    """Any other condition on a value, with the words that say it (`a model name ...`)."""

    fn: Callable[[Any], bool]
    text: str


@dataclass(frozen=True)
class Canon:
    """The canonical spelling of an accepted value (a model's former name -> its name), applied
    after the checks, so two spellings of one choice give one identity."""

    fn: Callable[[Any], Any]


class OptionError(W2SError):
    pass


def describe(tp: Any) -> str:
    """`tp` in words, for messages: 'int >= 1', 'one of [prior, logodds]', 'list of str'."""
    base, bounds = unwrap(tp)
    origin = typing.get_origin(base)
    if origin is Literal:
        text = "one of " + ", ".join(repr(a) for a in typing.get_args(base))
    elif origin in (Union, types.UnionType):
        args = typing.get_args(base)
        text = " or ".join("null" if a is type(None) else describe(a) for a in args)
    elif origin in (list, tuple):
        args = typing.get_args(base)
        text = f"a list of {describe(args[0])}" if args else "a list"
    elif base is Any:
        text = "any value"
    else:
        text = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                dict: "a mapping", list: "a list"}.get(base, getattr(base, "__name__", str(base)))
    for b in bounds:
        if isinstance(b, Range):
            text += " " + b.text()
        elif isinstance(b, NonEmpty):
            text += " (not empty)"
        elif isinstance(b, Check):
            text = b.text
    return text


def unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """(the type, its Annotated metadata)."""
    if typing.get_origin(tp) is Annotated:
        args = typing.get_args(tp)
        return args[0], list(args[1:])
    return tp, []


def as_float(value: Any) -> Optional[float]:
    """An int, a float, or a string YAML 1.1 leaves unparsed (`1e-4`), as a finite float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _finite(value)
    if isinstance(value, str):
        try:
            return _finite(float(value))
        except ValueError:
            return None
    return None


def _finite(value: Any) -> Optional[float]:
    """A number as a finite float; None for NaN, infinities and ints too large for a float
    (a 400-digit count is never meant)."""
    try:
        f = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_NO = object()


def conform(tp: Any, value: Any, ints_as_float: bool = False) -> Any:
    """`value` as type `tp`, or _NO. A numeric string becomes a float where a float is allowed;
    an int stays an int there unless `ints_as_float` (config fields always made it a float,
    component options never did: each keeps its habit, so stored hashes stay the same)."""
    base, bounds = unwrap(tp)
    origin = typing.get_origin(base)
    out: Any = _NO
    if base is Any or base is inspect.Parameter.empty:
        out = value
    elif origin is Literal:
        out = value if value in typing.get_args(base) else _NO
    elif origin in (Union, types.UnionType):
        args = typing.get_args(base)
        if value is None:
            out = None if type(None) in args else _NO
        else:
            for arg in sorted((a for a in args if a is not type(None)),
                              key=lambda a: unwrap(a)[0] is float):  # int before float
                out = conform(arg, value, ints_as_float)
                if out is not _NO:
                    break
    elif origin in (list, tuple) or base in (list, tuple):
        if isinstance(value, (list, tuple)):
            args = typing.get_args(base)
            items = [conform(args[0], v, ints_as_float) for v in value] if args else list(value)
            out = _NO if any(v is _NO for v in items) else items
    elif base is bool:
        out = value if isinstance(value, bool) else _NO
    elif base is int:
        out = value if isinstance(value, int) and not isinstance(value, bool) else _NO
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = _finite(value)
            out = _NO if f is None else float(value) if ints_as_float else value
        else:
            f = as_float(value)
            out = _NO if f is None else f
    elif base is str:
        out = value if isinstance(value, str) else _NO
    elif base is dict:
        out = value if isinstance(value, dict) else _NO
    elif isinstance(base, type):
        out = value if isinstance(value, base) else _NO
    else:
        out = value
    if out is _NO or out is None:
        return out
    for b in bounds:
        if isinstance(b, Range) and (_finite(out) is None or not b.contains(float(out))):
            return _NO
        if isinstance(b, NonEmpty) and not out:
            return _NO
        if isinstance(b, Check) and not b.fn(out):
            return _NO
    for b in bounds:
        if isinstance(b, Canon):
            out = b.fn(out)
    return out


def check_value(tp: Any, value: Any, where: str, ints_as_float: bool = False) -> Any:
    out = conform(tp, value, ints_as_float)
    if out is _NO:
        raise OptionError(f"config: {where} must be {describe(tp)}, got {shown(value)}")
    return out


def parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of a component's factory: its options."""
    params = inspect.signature(factory).parameters
    return {n: p for n, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY}


def hints_of(factory: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(factory, include_extras=True)
    except (NameError, TypeError):
        return {}


def same_value(a: Any, b: Any) -> bool:
    """Equal as stored data: `1` and `1.0`, `True` and `1`, `[]` and `()` are told apart as
    the canonical JSON of a hash tells them apart."""
    def text(x: Any) -> str:
        return json.dumps(x, sort_keys=True, separators=(",", ":"), default=str)

    return text(a) == text(b)


def canonical(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options of a component as its identity holds them: each conformed to its annotation
    with an int made a float where only a float is meant (`alpha_max: 1` is `1.0`; where an int
    is meant too, as a count, it stays an int), then those equal to the parameter's default
    dropped. Two spellings of one choice (`loss: logconf`, `{name: logconf, alpha_max: 0.75}`)
    give one mapping, and an option added later with a default that keeps the earlier
    behaviour changes no identity. Unknown or ill-typed options are left as they are (`check`
    refuses them). Canonical options are a fixed point: canonical(f, canonical(f, o)) == it."""
    params, hints = parameters(factory), hints_of(factory)
    out = {}
    for key, value in options.items():
        param = params.get(key)
        if param is None:
            out[key] = value
            continue
        tp = hints.get(key, Any)
        conformed = conform(tp, value, ints_as_float=True)
        value = value if conformed is _NO else conformed
        if param.default is not inspect.Parameter.empty:
            default = conform(tp, param.default, ints_as_float=True)
            if same_value(value, param.default if default is _NO else default):
                continue
        out[key] = value
    return out


def check(factory: Callable[..., Any], options: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    """The options of component `name` at config key `where`, checked against `factory`'s
    keyword-only parameters: unknown and missing names, types and bounds. Returns the options
    (numeric strings made floats)."""
    params = parameters(factory)
    hints = hints_of(factory)
    for key in options:
        if key not in params:
            valid = ", ".join(params) or "none"
            raise OptionError(f"config: unknown option {key!r} for {where} {name!r}; "
                              f"valid options: {valid}")
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty
               and p not in options]
    if missing:
        raise OptionError(f"config: {where} {name!r} needs option(s) {', '.join(missing)} "
                          f"(e.g. {where}.{missing[0]}=...)")
    return {k: check_value(hints.get(k, Any), v, f"{where}.{k}") for k, v in options.items()}
