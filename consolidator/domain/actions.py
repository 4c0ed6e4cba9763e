"""What a planner may ask for. A Plan is data; the VM Controller decides when and whether to act."""

from __future__ import annotations

from dataclasses import dataclass, field

from consolidator.domain.types import MigrationMethod


@dataclass(frozen=True, slots=True)
class Migrate:
    vm: str
    src: str
    dst: str
    method: MigrationMethod
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Suspend:
    host: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Wake:
    host: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelMigration:
    vm: str
    reason: str = ""


Action = Migrate | Suspend | Wake | CancelMigration


@dataclass(frozen=True, slots=True)
class Plan:
    """An unordered set of actions plus efficacy indicators (e.g. ``hosts_needed``)."""

    actions: tuple[Action, ...] = ()
    indicators: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)
