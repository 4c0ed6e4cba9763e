"""Downsampling, retention and CSV export on real SQLite (and PostgreSQL for the SQL that differs)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.samples import HostSample, PowerSample, VmSample
from consolidator.storage import StoreError, open_store
from consolidator.storage.export import export_csv
from consolidator.storage.retention import RetentionPolicy, apply_retention


def _fill(store, seconds: int) -> None:  # type: ignore[no-untyped-def]
    for t in range(seconds):
        store.write_host_samples([HostSample(float(t), "pm0", cpu_load=t % 10 / 10, watts=50.0 + t % 10)])
        store.write_vm_samples([VmSample(float(t), "vm0", "pm0" if t < 30 else "pm1", 0.5, 1e6 * (t % 2))])
        store.write_power_samples([PowerSample(float(t), "pm0", "ipmi", None if t % 10 == 9 else 60.0,
                                               "timeout" if t % 10 == 9 else None)])


def _check_retention(url: str) -> None:
    with open_store(url) as store:
        _fill(store, 125)
        result = apply_retention(store, now_s=125.0, policy=RetentionPolicy(raw_keep_s=10.0, bucket_s=20.0))
        # cut-off 115 rounds down to 100: samples 0..99 fold into 5 buckets per table
        assert result.raw_rows_folded == 300 and result.rollup_rows_added == 15
        assert store.count("host_samples") == 25 and store.count("host_rollups") == 5
        with store.transaction() as conn:
            rows = conn.exec_driver_sql(
                "SELECT t_s, n, cpu_load_avg, cpu_load_max, watts_avg FROM host_rollups ORDER BY t_s").all()
            power = conn.exec_driver_sql("SELECT n, watts_avg, errors FROM power_rollups ORDER BY t_s").all()
            vms = conn.exec_driver_sql("SELECT t_s, host, dirty_bytes_per_s_avg FROM vm_rollups ORDER BY t_s").all()
        assert [tuple(r) for r in rows][0] == (0.0, 20, pytest.approx(0.45), 0.9, pytest.approx(54.5))
        assert [r[0] for r in rows] == [0.0, 20.0, 40.0, 60.0, 80.0]
        assert [tuple(r) for r in power] == [(20, 60.0, 2)] * 5
        assert [r[1] for r in vms] == ["pm0", "pm1", "pm1", "pm1", "pm1"]  # bucket 20-39 migrated: max(host)
        assert vms[0][2] == pytest.approx(0.5e6)
        again = apply_retention(store, now_s=125.0, policy=RetentionPolicy(raw_keep_s=10.0, bucket_s=20.0))
        assert again.raw_rows_folded == 0  # idempotent
        drop = apply_retention(store, 125.0, RetentionPolicy(raw_keep_s=10.0, bucket_s=20.0, rollup_keep_s=70.0))
        assert drop.rollup_rows_dropped == 2 * 3  # buckets that end by 125 - 70 = 55 s: 0-20 and 20-40
        assert store.count("host_rollups") == 3


def test_retention_on_sqlite(tmp_path: Path) -> None:
    _check_retention(str(tmp_path / "run.sqlite"))


@pytest.mark.services
def test_retention_on_postgres(postgres_url: str) -> None:
    _check_retention(postgres_url)


def test_bad_retention_policy_is_a_user_error() -> None:
    with pytest.raises(UserError, match="bucket_s"):
        RetentionPolicy(bucket_s=0)


def test_export_writes_every_row_as_csv(tmp_path: Path) -> None:
    with open_store(tmp_path / "run.sqlite") as store:
        _fill(store, 12)
        written = export_csv(store, tmp_path / "out")
        assert written["host_samples"] == 12 and written["power_samples"] == 12 and written["events"] == 0
        with pytest.raises(StoreError, match="no table 'nope'"):
            export_csv(store, tmp_path / "out", ["nope"])
    with (tmp_path / "out" / "power_samples.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[9] == {"id": "10", "t_s": "9.0", "node": "pm0", "meter": "ipmi", "watts": "", "error": "timeout"}
    assert rows[0]["watts"] == "60.0"
