"""QEMU's status words (``query-migrate`` and the MIGRATION event, ``query-dirty-rate``), parsed at the
QMP edge.

The driver reads a reply once through ``migration_status`` and compares members from then on; a word
this QEMU reports that the list does not know is a DriverError naming it, never a silent guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from consolidator.agent.hypervisor import DriverError
from consolidator.domain.types import MigrationOutcome, Vocabulary

W = TypeVar("W", bound=Vocabulary)


class MigrationStatus(Vocabulary):
    """QAPI ``MigrationStatus`` (qapi/migration.json, QEMU 10)."""

    NONE = "none"
    SETUP = "setup"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    ACTIVE = "active"
    POSTCOPY_DEVICE = "postcopy-device"
    POSTCOPY_ACTIVE = "postcopy-active"
    POSTCOPY_PAUSED = "postcopy-paused"
    POSTCOPY_RECOVER_SETUP = "postcopy-recover-setup"
    POSTCOPY_RECOVER = "postcopy-recover"
    COMPLETED = "completed"
    FAILED = "failed"
    COLO = "colo"
    PRE_SWITCHOVER = "pre-switchover"
    DEVICE = "device"
    WAIT_UNPLUG = "wait-unplug"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def paused(self) -> bool:
        """A postcopy whose link broke (or is being recovered): the guest's memory is split."""
        return self in _PAUSED

    @property
    def postcopy(self) -> bool:
        """The guest runs at the destination (active, paused or recovering postcopy)."""
        return self.value.startswith("postcopy")

    @property
    def precopy(self) -> bool:
        """Sending before the switch-over: the guest still runs at the source."""
        return self in _PRECOPY

    def outcome(self) -> MigrationOutcome:
        """The move's outcome once final: completed, cancelled, else failed."""
        return _OUTCOMES.get(self, MigrationOutcome.FAILED)


_FINAL = frozenset({MigrationStatus.COMPLETED, MigrationStatus.FAILED, MigrationStatus.CANCELLED})
_PAUSED = frozenset({MigrationStatus.POSTCOPY_PAUSED, MigrationStatus.POSTCOPY_RECOVER_SETUP,
                     MigrationStatus.POSTCOPY_RECOVER})
_PRECOPY = frozenset({MigrationStatus.ACTIVE, MigrationStatus.SETUP, MigrationStatus.DEVICE,
                      MigrationStatus.PRE_SWITCHOVER})
_OUTCOMES = {MigrationStatus.COMPLETED: MigrationOutcome.COMPLETED,
             MigrationStatus.CANCELLED: MigrationOutcome.CANCELLED}


class DirtyRateStatus(Vocabulary):
    """QAPI ``DirtyRateStatus``: where a ``calc-dirty-rate`` measurement stands."""

    UNSTARTED = "unstarted"
    MEASURING = "measuring"
    MEASURED = "measured"


def migration_status(info: Mapping[str, Any]) -> MigrationStatus:
    """The status of a ``query-migrate`` reply (no status: none); an unknown word is a DriverError."""
    return _parse(MigrationStatus, info.get("status", "none"), "QEMU migration status")


def dirty_rate_status(info: Mapping[str, Any]) -> DirtyRateStatus:
    """The status of a ``query-dirty-rate`` reply; an unknown word is a DriverError."""
    return _parse(DirtyRateStatus, info.get("status"), "QEMU dirty-rate status")


def _parse(vocabulary: type[W], word: object, what: str) -> W:
    try:
        return vocabulary.parse(word, what)
    except ValueError as exc:
        raise DriverError(str(exc)) from None
