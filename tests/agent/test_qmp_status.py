"""QEMU's migration status words are parsed once at the QMP edge (agent.qemu.status); table-driven."""

from __future__ import annotations

import pytest

from consolidator.agent.hypervisor import DriverError
from consolidator.agent.qemu.status import DirtyRateStatus, MigrationStatus, dirty_rate_status, migration_status
from consolidator.domain.types import MigrationOutcome

# status word -> (final, paused, postcopy, precopy, outcome once final)
ROWS = [
    ("none", False, False, False, False, None),
    ("setup", False, False, False, True, None),
    ("active", False, False, False, True, None),
    ("device", False, False, False, True, None),
    ("pre-switchover", False, False, False, True, None),
    ("postcopy-active", False, False, True, False, None),
    ("postcopy-paused", False, True, True, False, None),
    ("postcopy-recover-setup", False, True, True, False, None),
    ("postcopy-recover", False, True, True, False, None),
    ("completed", True, False, False, False, MigrationOutcome.COMPLETED),
    ("cancelled", True, False, False, False, MigrationOutcome.CANCELLED),
    ("failed", True, False, False, False, MigrationOutcome.FAILED),
]


@pytest.mark.parametrize(("word", "final", "paused", "postcopy", "precopy", "outcome"), ROWS)
def test_status_words_and_what_they_mean(word: str, final: bool, paused: bool, postcopy: bool, precopy: bool,
                                         outcome: MigrationOutcome | None) -> None:
    status = migration_status({"status": word})
    assert status.value == word
    assert (status.final, status.paused, status.postcopy, status.precopy) == (final, paused, postcopy, precopy)
    if outcome is not None:
        assert status.outcome() is outcome


def test_a_reply_without_status_is_none() -> None:
    assert migration_status({}) is MigrationStatus.NONE


@pytest.mark.parametrize("word", ["postcopy-exploded", "", 3])
def test_an_unknown_status_is_a_driver_error_naming_it(word: object) -> None:
    with pytest.raises(DriverError, match=rf"unknown QEMU migration status {word!r} \(expected one of: none, "):
        migration_status({"status": word})


@pytest.mark.parametrize("word", ["unstarted", "measuring", "measured"])
def test_dirty_rate_status_words(word: str) -> None:
    assert dirty_rate_status({"status": word}) is DirtyRateStatus(word)


def test_an_unknown_dirty_rate_status_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match=r"unknown QEMU dirty-rate status 'guessing'"):
        dirty_rate_status({"status": "guessing"})
