"""User-facing errors: one clear line that names the file or field; the CLI exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a person: a config, scenario, trace or argument. Printed as one line, exit 2."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
