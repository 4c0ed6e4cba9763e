"""The record of a migration in flight (what a restarted agent watches on): every option survives it."""

from __future__ import annotations

from pathlib import Path

from consolidator.agent.hypervisor import MigrationRequest
from consolidator.agent.qemu.launch import VmPaths, load_migration, save_migration
from consolidator.domain.types import MigrationMethod
from consolidator.protocol.migration import MigrationOptions, OnTimeout
from consolidator.protocol.schemas import MigrateBody


def test_a_recorded_migration_reads_back_with_its_options(tmp_path: Path) -> None:
    options = MigrationOptions(max_bandwidth_bytes_per_s=20e6, downtime_limit_s=0.05, timeout_s=7.5,
                               on_timeout=OnTimeout.POSTCOPY, hybrid_precopy_rounds=3)
    request = MigrationRequest("vm3", "tcp:10.77.0.11:49153", MigrationMethod.HYBRID, options)
    paths = VmPaths(tmp_path)
    save_migration(paths, request, started_s=1234.5)
    assert load_migration(paths) == (request, 1234.5)


def test_a_record_with_an_option_out_of_bounds_is_unreadable_not_fatal(tmp_path: Path) -> None:
    paths = VmPaths(tmp_path)
    save_migration(paths, MigrationRequest("vm3", "tcp:10.77.0.11:49153", MigrationMethod.PRECOPY), 1.0)
    paths.migration.write_text(paths.migration.read_text().replace('"timeout_s": 60.0', '"timeout_s": -1'))
    assert load_migration(paths) is None


def test_the_agent_gets_the_options_the_manager_sent() -> None:
    options = MigrationOptions(max_bandwidth_bytes_per_s=None, timeout_s=9.0, on_timeout=OnTimeout.POSTCOPY)
    body = MigrateBody.of("tcp:10.77.0.11:49153", "pm1", MigrationMethod.PRECOPY, options)
    wire = MigrateBody.model_validate_json(body.model_dump_json())
    assert wire.options() == options and wire.migration_method is MigrationMethod.PRECOPY
