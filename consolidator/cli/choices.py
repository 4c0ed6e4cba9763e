"""Choices shared by several commands (typer needs an Enum; values are the domain's words)."""

from __future__ import annotations

import enum


class Method(enum.Enum):
    """A live migration method a user may ask for (``MigrationMethod`` without the ideal's ``instant``)."""

    precopy = "precopy"
    postcopy = "postcopy"
    hybrid = "hybrid"
