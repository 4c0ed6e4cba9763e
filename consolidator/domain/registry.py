"""Registration tables of the extension points: one entry per kind, typed parameters with defaults.

Every extension point — planner policies, power meters, wake methods, overload detectors, VM
selectors — declares each of its kinds once, as an entry with a name, a line of help and its
``Param``s. The command line, the configuration loaders and the docs read that table, so a default
or a range lives in one place. ``Table.get`` names the known kinds when a name is wrong;
``check_args`` turns a mapping of raw values (from TOML or the command line) into typed values,
and every mistake is a ``UserError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from consolidator.domain.errors import UserError

Value = float | int | bool | str
KINDS: dict[type, str] = {float: "float", int: "int", bool: "bool", str: "str"}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its default (None: none), its type, its closed range (None: unbounded), its meaning.

    ``required`` parameters have no default and must be given.
    """

    name: str
    default: Value | None
    help: str = ""
    kind: type = float
    low: float | None = None
    high: float | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"parameter {self.name}: kind must be one of {', '.join(KINDS.values())}")

    @property
    def number(self) -> float:
        """The default of a numeric parameter, as a float (TypeError for others)."""
        if isinstance(self.default, bool) or not isinstance(self.default, int | float):
            raise TypeError(f"parameter {self.name} has no numeric default")
        return float(self.default)

    def check(self, owner: str, value: object, field: str) -> Value:
        """``value`` as this parameter's type; a wrong type or range raises UserError naming ``field``."""
        if self.kind is str:
            if not isinstance(value, str):
                raise UserError(f"must be a string, got {value!r}", field=field)
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise UserError(f"must be true or false, got {value!r}", field=field)
            return value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"must be a number, got {value!r}", field=field)
        if self.kind is int and float(value) != int(value):
            raise UserError(f"must be a whole number, got {value!r}", field=field)
        number = float(value)
        if not math.isfinite(number) or (self.low is not None and number < self.low) or (
                self.high is not None and number > self.high):
            low = "-inf" if self.low is None else f"{self.low:g}"
            high = "inf" if self.high is None else f"{self.high:g}"
            raise UserError(f"{number:g} out of range [{low}, {high}] for {owner}", field=field)
        return int(number) if self.kind is int else number

    def as_dict(self) -> dict[str, object]:
        """What ``--json`` listings print: default, type, range, meaning (and whether it is required)."""
        default = int(self.default) if self.kind is int and self.default is not None else self.default
        out: dict[str, object] = {"default": default, "type": KINDS[self.kind], "min": self.low, "max": self.high,
                                  "help": self.help}
        if self.required:
            out["required"] = True
        return out


def check_args(params: Sequence[Param], args: Mapping[str, object], owner: str,
               field: Callable[[str], str] = lambda name: name, defaults: bool = True) -> dict[str, Value]:
    """Typed values of ``args`` (None values count as not given) for ``owner`` (e.g. "the ipmi meter").

    Unknown names, wrong types or ranges and missing required parameters raise UserError naming
    ``field(name)``. With ``defaults`` the parameters not given take their defaults (None ones stay out).
    """
    known = {p.name: p for p in params}
    for key in args:
        if key not in known:
            raise UserError(f"{owner} takes no argument {key!r} (known: {', '.join(known) or 'none'})",
                            field=field(key))
    values: dict[str, Value] = {}
    for p in params:
        raw = args.get(p.name)
        if raw is not None:
            values[p.name] = p.check(owner, raw, field(p.name))
        elif p.required:
            raise UserError(f"required for {owner}", field=field(p.name))
        elif defaults and p.default is not None:
            values[p.name] = p.default
    return values


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Described(Named, Protocol):
    @property
    def summary(self) -> str: ...

    @property
    def params(self) -> Sequence[Param]: ...


def describe(entries: Iterable[Described]) -> list[dict[str, object]]:
    """What ``--json`` listings print for a table: name, parameters (default, type, range, meaning), summary."""
    return [{"name": e.name, "params": {p.name: p.as_dict() for p in e.params}, "summary": e.summary}
            for e in entries]


E = TypeVar("E", bound=Named)


class Table(Generic[E]):
    """The entries of one extension point, by name, in declaration order."""

    def __init__(self, what: str, entries: Sequence[E]) -> None:
        self.what = what
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ValueError(f"two {what}s share a name")

    def get(self, name: object, field: str | None = None, source: str | None = None) -> E:
        """The entry called ``name``; an unknown name raises UserError listing the known ones."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise UserError(f"unknown {self.what} {name!r} (known: {', '.join(self._entries)})", source=source,
                            field=field)
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
