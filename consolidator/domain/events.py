"""What the world reports back: every side effect returns to the control loop as one of these."""

from __future__ import annotations

from dataclasses import dataclass

from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState


@dataclass(frozen=True, slots=True)
class MigrationStarted:
    t_s: float
    vm: str
    src: str
    dst: str
    method: MigrationMethod


@dataclass(frozen=True, slots=True)
class MigrationFinished:
    t_s: float
    vm: str
    src: str
    dst: str
    method: MigrationMethod
    outcome: MigrationOutcome
    start_s: float
    bytes_sent: float = 0.0
    downtime_s: float = 0.0
    rounds: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HostPowerChanged:
    t_s: float
    host: str
    state: PowerState
    detail: str = ""


Event = MigrationStarted | MigrationFinished | HostPowerChanged
