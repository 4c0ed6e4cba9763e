"""Hosts, VMs and their states. Units are in the names: ``_mib``, ``_watts``, ``_s``, ``_bytes_per_s``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Self, SupportsInt

MIB = 1024 * 1024


class Vocabulary(enum.StrEnum):
    """A state word that crosses JSON, SQL or the command line: its value is the serialised form.

    Parse text with ``parse`` at the edge (a JSON body, a stored row, a QMP reply); inside, compare
    members with ``is``, never strings.
    """

    @classmethod
    def parse(cls, text: object, what: str | None = None) -> Self:
        """The member whose value is ``text``; ValueError naming ``what`` and the known values if none."""
        for member in cls:
            if member.value == text:
                return member
        known = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown {what or cls.__name__} {text!r} (expected one of: {known})")


class Role(Vocabulary):
    """The paper's two kinds of host node (Section III-B3)."""

    WAREHOUSE = "warehouse"  # packs idle VMs, large memory
    SERVER = "server"  # runs one active VM


class PowerState(Vocabulary):
    """Host power lifecycle: on -> suspending -> suspended -> resuming -> on; failed when a wake fails.

    ``code`` is the state's int8 form in array-shaped views (``Snapshot.host_state``, the simulator's
    and the controller's state arrays); ``from_code`` reads it back. The codes follow the order below.
    """

    ON = "on"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    FAILED = "failed"

    @property
    def code(self) -> int:
        return _POWER_CODES[self]

    @classmethod
    def from_code(cls, code: SupportsInt) -> PowerState:
        return _POWER_STATES[int(code)]


_POWER_STATES: tuple[PowerState, ...] = tuple(PowerState)
_POWER_CODES: dict[PowerState, int] = {state: i for i, state in enumerate(_POWER_STATES)}


class SleepMode(Vocabulary):
    """How a real host sleeps when suspended (config ``sleep``)."""

    S3 = "s3"  # suspend to RAM (systemctl suspend); wakes by Wake-on-LAN or its BMC
    OFF = "off"  # power off (systemctl poweroff); its BMC powers it on again


class MigrationMethod(Vocabulary):
    PRECOPY = "precopy"
    POSTCOPY = "postcopy"
    HYBRID = "hybrid"  # precopy rounds, then switch to postcopy
    INSTANT = "instant"  # the `ideal` baseline only: moves in zero time


class MigrationOutcome(Vocabulary):
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # precopy that did not converge before its timeout
    FAILED = "failed"  # an endpoint failed; for postcopy this loses the VM
    LOST = "lost"  # the manager's verdict: a postcopy's other half died, the guest is gone (never a clean stop)


@dataclass(frozen=True, slots=True)
class PowerProfile:
    """Watts and transition times of one host model (defaults: DESIGN §2, the paper's Tables II-III).

    ``table_watts`` (SPECpower style, W at 0, 10, ..., 100 % load) overrides the linear model.
    """

    idle_watts: float = 53.0
    max_watts: float = 100.0
    suspended_watts: float = 7.0
    off_watts: float = 6.0
    suspend_s: float = 5.0
    resume_s: float = 5.0
    transition_watts: float | None = None  # None: idle power while suspending/resuming
    migration_watts: float = 3.0  # per endpoint, while a migration runs (paper Fig. 2)
    dirty_tracking_watts: float = 20.0  # source of a precopy, while it tracks dirty pages (Sec. IV-B)
    table_watts: tuple[float, ...] | None = None
    # CPU load at which the host draws max_watts. It must be where the host stops serving (its
    # HostSpec.cores; DESIGN §2 "Host capacity"): None means exactly that. The default 1.0 is the paper's
    # host, whose "100 %" is 1.0 (P = 53 + 47·min(1, L)); any other split of the two is a sensitivity
    # reading only (a host that serves 4 but whose power stops rising at 1 makes packing free).
    full_load_cores: float | None = 1.0

    def __post_init__(self) -> None:
        if self.table_watts is not None and len(self.table_watts) != 11:
            raise ValueError("table_watts needs 11 values (0, 10, ..., 100 % load)")


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    role: Role
    # Capacity: the CPU load the host can serve, in the VMs' load unit (a 1-vCPU VM at full load is 1.0);
    # its power curve saturates at the same point (PowerProfile.full_load_cores). Scenario files default
    # to the paper's host, 1.0.
    cores: float = 4.0
    mem_mib: int = 16384
    nic_bytes_per_s: float = 120e6  # migration link of this host (GbE ≈ 120 MB/s)
    power: PowerProfile = field(default_factory=PowerProfile)
    # Load one physical core serves, in the VMs' load unit: a vCPU never gets more than this (CloudSim
    # caps a 2500-MIPS VM on a 1860-MIPS core at 1860; with 1000 MIPS as the unit, 1.86).
    core_speed: float = 1.0


@dataclass(frozen=True, slots=True)
class VmSpec:
    name: str
    vcpus: int = 1
    mem_mib: int = 1024
    wws_mib: int | None = None  # writable working set; None = all of its memory
    dirty_bytes_per_s_at_full: float = 200e6  # intensity 0.6 ⇒ ≈ 200 MB/s at 100 % CPU (paper IV-B)
    vcpu_speed: float = 1.0  # load of one vCPU at 100 % (a 2500-MIPS VM is 2.5 with 1000 MIPS as the unit)

    @property
    def mem_bytes(self) -> int:
        return self.mem_mib * MIB

    @property
    def wws_bytes(self) -> int:
        return (self.wws_mib if self.wws_mib is not None else self.mem_mib) * MIB
