"""Errors the agent maps to HTTP statuses: NotFound -> 404, Conflict -> 409."""

from __future__ import annotations


class NotFound(Exception):
    """The named VM is not on this host."""


class Conflict(Exception):
    """The request is valid but the host's state forbids it now (suspended, busy, exists, full)."""


class Forbidden(Exception):
    """The request is valid but not allowed by this host's configuration (e.g. an unknown migration peer)."""
