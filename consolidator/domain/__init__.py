"""Plain, typed vocabulary shared by every layer: hosts, VMs, actions, events, snapshots."""

from consolidator.domain.actions import Action, CancelMigration, Migrate, Plan, Suspend, Wake
from consolidator.domain.events import (
    Event,
    HostPowerChanged,
    MigrationFinished,
    MigrationStarted,
)
from consolidator.domain.types import (
    HostSpec,
    MigrationMethod,
    MigrationOutcome,
    PowerProfile,
    PowerState,
    Role,
    VmSpec,
)

__all__ = [
    "Action",
    "CancelMigration",
    "Event",
    "HostPowerChanged",
    "HostSpec",
    "Migrate",
    "MigrationFinished",
    "MigrationMethod",
    "MigrationOutcome",
    "MigrationStarted",
    "Plan",
    "PowerProfile",
    "PowerState",
    "Role",
    "Suspend",
    "VmSpec",
    "Wake",
]
