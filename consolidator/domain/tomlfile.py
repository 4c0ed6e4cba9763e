"""The one TOML loader: every configuration file (scenario, host.toml, cluster.toml, power, fault spec).

A mistake is one ``UserError`` naming the file and, where there is one, the field as
``section.field`` (printed ``file: section.field: what is wrong``; the CLI exits 2):

- ``read_toml`` reads the file's bytes (unreadable, too large, not UTF-8, not TOML: one line naming
  the file) — the input boundary of every loader, nothing else here touches a file;
- ``parse_toml`` does the same for bytes already in hand (built-in scenarios);
- ``Fields`` reads one table field by field with types, ranges and known keys;
- ``schema_error`` turns the first error of a schema validation (pydantic's ``errors()`` list) into
  the same one line.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from consolidator.domain.errors import UserError

T = TypeVar("T")


def parse_toml(data: bytes, source: str, what: str = "") -> dict[str, Any]:
    """The document in ``data``; not UTF-8 or not TOML raises UserError naming ``source``.

    ``what`` names the expected kind of file in the message (``"a host.toml"``).
    """
    hint = f": not {what}" if what else ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text (byte {exc.start}){hint}", source=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML: {exc}", source=source) from None


def read_toml(path: Path, what: str = "", max_bytes: int | None = None, empty_ok: bool = True) -> dict[str, Any]:
    """Read and parse the TOML file ``path``; every failure is one UserError naming the file."""
    source = str(path)
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise UserError(f"larger than {max_bytes} bytes{f': not {what}' if what else ''}", source=source)
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", source=source) from None
    if not empty_ok and not data.strip():
        raise UserError("file is empty", source=source)
    return parse_toml(data, source, what)


def schema_error(errors: Sequence[Mapping[str, Any]], source: str, skip: Iterable[str] = ()) -> UserError:
    """The first of a schema validation's errors (pydantic's ``ValidationError.errors()``) as a UserError.

    Its location becomes the field (``hosts[1].role``, ``limits.reserve_hosts``); parts named in
    ``skip`` (a discriminated union's tags) and pydantic's ``[key]`` markers are left out.
    """
    first = errors[0]
    left_out = {"[key]", *skip}
    field = ""
    for part in first.get("loc", ()):
        if isinstance(part, int):
            field += f"[{part}]"
        elif str(part) not in left_out:
            field += f".{part}" if field else str(part)
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return UserError(message, source=source, field=field or None)


class Fields:
    """One table of a TOML file, read field by field; a mistake names ``source: prefix.key``."""

    def __init__(self, table: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self.table = table
        self.source = source
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, message: str) -> NoReturn:
        raise UserError(message, source=self.source, field=self.where(key))

    def only(self, known: Iterable[str]) -> None:
        """Refuse keys outside ``known`` (a typo must not pass silently)."""
        names = sorted(known)
        unknown = sorted(set(self.table) - set(names))
        if unknown:
            self.fail(unknown[0], f"unknown key (known: {', '.join(names)})")

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = None) -> Any:
        """The value of ``key`` (``default`` if absent), which must be of ``kind`` (bool is not a number)."""
        value = self.table.get(key, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
            self.fail(key, f"must be a {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
        return value

    def text(self, key: str, why: str) -> str:
        """A required, non-empty string (``why`` says what needs it)."""
        value = self.get(key, str)
        if not value:
            self.fail(key, f"required for {why}")
        return str(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """A finite number in ``low..high``."""
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            self.fail(key, f"must be a number in {low:g}..{high:g}, not {value!r}")
        return float(value)

    def sub(self, key: str) -> Fields:
        """The table under ``key`` (absent: empty) as Fields of the same file."""
        value = self.get(key, dict, {})
        return Fields(value, self.source, self.where(key))
