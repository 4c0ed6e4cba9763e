"""What is measured: host and VM usage samples and power readings, shared by every layer.

Pollers (manager, libvirt stats) produce samples, the Load Monitor reads them, run stores keep them;
meters produce power readings, the Power Monitor sums them into one report per period.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostSample:
    """One host's usage at ``t_s``. CPU in cores (1.0 = one core busy); watts if metered."""

    t_s: float
    host: str
    cpu_load: float
    mem_used_mib: float = 0.0
    watts: float | None = None
    net_bytes_per_s: float = 0.0
    disk_bytes_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class VmSample:
    """One VM's usage at ``t_s``: CPU as a fraction of one core; dirty rate if measured."""

    t_s: float
    vm: str
    host: str
    cpu_load: float
    dirty_bytes_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class PowerSample:
    """One meter reading of one node at ``t_s``; ``watts`` is None and ``error`` says why on failure."""

    t_s: float
    node: str
    meter: str
    watts: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PowerReport:
    """One period: each node's watts (None if its meter failed), the total, the energy so far."""

    t_s: float
    watts: dict[str, float | None]
    errors: dict[str, str]
    total_watts: float
    energy_ws: dict[str, float]
    total_energy_ws: float
