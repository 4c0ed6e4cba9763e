"""What a run measures, as every layer passes it on: readings of meters (and, later, of hosts and VMs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PowerSample:
    """One meter reading of one node at ``t_s``; ``watts`` is None and ``error`` says why on failure."""

    t_s: float
    node: str
    meter: str
    watts: float | None
    error: str | None = None
