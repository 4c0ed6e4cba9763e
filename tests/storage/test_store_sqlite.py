"""The run store on a real SQLite file: round trips, latest values, restart, bad files, schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from storage_restart import check_kill_and_resume  # tests/storage/storage_restart.py

from consolidator.domain.errors import UserError
from consolidator.domain.events import HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.samples import HostSample, PowerSample, VmSample
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.storage import StoreError, open_store
from consolidator.storage.schema import metadata


def _hosts(t: float, n: int = 3) -> list[HostSample]:
    return [HostSample(t, f"pm{i}", cpu_load=0.1 * i + t / 100, mem_used_mib=512.0 * i,
                       watts=53.0 + i) for i in range(n)]


def test_round_trip_of_samples_events_and_power(tmp_path: Path) -> None:
    with open_store(tmp_path / "run.sqlite") as store:
        for t in range(10):
            store.write_host_samples(_hosts(float(t)))
            store.write_vm_samples([VmSample(float(t), "vm0", "pm0", 0.8, 80e6)])
            store.write_power_samples([PowerSample(float(t), "pm0", "model", 60.0 + t)])
        store.write_power_samples([PowerSample(10.0, "pm0", "ipmi", None, "timeout")])
        started = MigrationStarted(3.0, "vm0", "pm0", "pm1", MigrationMethod.POSTCOPY)
        finished = MigrationFinished(5.5, "vm0", "pm0", "pm1", MigrationMethod.POSTCOPY,
                                     MigrationOutcome.COMPLETED, start_s=3.0, bytes_sent=1.5e8)
        power = HostPowerChanged(6.0, "pm0", PowerState.SUSPENDED, "empty")
        for ev in (started, finished, power):
            store.write_event(ev)
        assert store.events() == [started, finished, power]
        assert store.events(start_s=5.0) == [finished, power]
        window = store.host_window("pm1", 2.0, 4.0)
        assert [s.t_s for s in window] == [2.0, 3.0, 4.0]
        assert window[0] == _hosts(2.0)[1]
        assert store.host_average("pm2", 0.0, 9.0) == pytest.approx(0.2 + 4.5 / 100)
        assert store.host_average("nobody", 0.0, 9.0) is None
        assert [s.dirty_bytes_per_s for s in store.vm_window("vm0", 8.0, 100.0)] == [80e6, 80e6]
        readings = store.power_window("pm0", 9.0, 10.0)
        assert readings == [PowerSample(9.0, "pm0", "model", 69.0), PowerSample(10.0, "pm0", "ipmi", None, "timeout")]
        assert store.count("host_samples") == 30


def test_latest_values_are_in_memory_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with open_store(path) as store:
        store.write_host_samples(_hosts(1.0) + _hosts(2.0))
        store.write_vm_samples([VmSample(2.0, "vm0", "pm0", 0.4), VmSample(2.0, "vm1", "pm2", 0.9)])
        assert store.latest_host("pm1") == _hosts(2.0)[1]
        store.write_event(HostPowerChanged(2.5, "pm2", PowerState.SUSPENDED))
        store.set_meta("seed", "7")
    with open_store(path) as store:
        state = store.resume_state()
        assert state.last_t_s == 2.0
        assert state.hosts == {s.host: s for s in _hosts(2.0)}
        assert state.vms["vm1"] == VmSample(2.0, "vm1", "pm2", 0.9)
        assert state.power_states == {"pm2": PowerState.SUSPENDED}
        assert state.meta == {"seed": "7"}


def test_a_killed_manager_loses_no_stored_sample_and_resumes(tmp_path: Path) -> None:
    """SIGKILL a writer mid-run, twice: every tick it reported flushed is stored; the next resumes."""
    check_kill_and_resume(str(tmp_path / "run.sqlite"))


def test_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreError, match=r"run\.sqlite.*not a valid SQLite database") as info:
        open_store(path)
    assert isinstance(info.value, UserError)


def test_missing_folder_and_unknown_scheme_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder does not exist"):
        open_store(tmp_path / "nope" / "run.sqlite")
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://x/y")


def test_locked_file_fails_clearly_and_keeps_buffered_samples(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    store = open_store(path)
    store.write_host_samples(_hosts(0.0))
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"run\.sqlite.*locked by another process"):
            store.flush()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    store.flush()  # the samples buffered before the failure are still there
    assert store.count("host_samples") == 3
    store.close()


def test_migrations_create_exactly_the_declared_schema(tmp_path: Path) -> None:
    with open_store(tmp_path / "run.sqlite") as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_database_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"run\.sqlite.*revision '9999' is newer than this program"):
        open_store(path)


def test_opening_a_locked_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    open_store(path).close()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("PRAGMA journal_mode=DELETE")  # an old-style writer holding an exclusive lock
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"run\.sqlite.*locked by another process"):
            open_store(path)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
