"""Loading run folders: values come through typed and in time order; every broken file is named.

The run folders are hand-made fixtures (report_fixtures.py), not simulator output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import report_fixtures

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationOutcome, PowerState
from consolidator.reports.layout import find_experiments
from consolidator.reports.runs import load_run


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return report_fixtures.write_run(tmp_path / "run", "simple", "postcopy", 0, duration_s=200)


def test_load_run_reads_every_file(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert sorted(run.hosts) == list(report_fixtures.HOSTS)
    assert sorted(run.vms) == list(report_fixtures.VMS)
    assert run.summary.policy == "paper" and run.summary.migration == "postcopy"
    assert [m.vm for m in run.migrations] == ["VM0", "VM0", "VM0"]
    assert run.hosts["PM0"].role == "warehouse" and run.hosts["PM1"].role == "server"
    assert np.all(np.diff(run.hosts["PM1"].t_s) > 0)
    # VM0 starts on PM0 and is on PM1 after its first migration (5 s -> 15 s).
    vm0 = run.vms["VM0"]
    assert vm0.host[0] == "PM0" and vm0.host[20] == "PM1" and vm0.migrating[10]


def test_total_watts_is_the_sum_over_hosts(run_dir: Path) -> None:
    run = load_run(run_dir)
    times, total = run.total_watts()
    assert len(times) == 200
    assert total.sum() == pytest.approx(run.summary.energy_ws)  # 1 s ticks: Ws = sum of W


def test_active_hosts_counts_powered_hosts(run_dir: Path) -> None:
    run = load_run(run_dir)
    times, count = run.active_hosts()
    assert count[0] == 2  # PM0 and PM1 on, PM2-PM5 asleep
    asleep = (times > 110) & (times < 170)  # PM1 suspended from ≈ 105 s to 176 s
    assert set(count[asleep]) == {1}


@pytest.mark.parametrize("name", ["summary.json", "hosts.csv", "vms.csv", "migrations.csv", "power_events.csv"])
def test_missing_file_is_named(run_dir: Path, name: str) -> None:
    (run_dir / name).unlink()
    with pytest.raises(UserError, match=f"{name}: file is missing"):
        load_run(run_dir)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run folder is missing"):
        load_run(tmp_path / "nope")


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


def test_missing_column_is_named(run_dir: Path) -> None:
    _rewrite(run_dir / "hosts.csv", ",watts,", ",power,")
    with pytest.raises(UserError, match=r"hosts\.csv: missing column\(s\) watts"):
        load_run(run_dir)


def test_bad_number_names_file_line_and_column(run_dir: Path) -> None:
    lines = (run_dir / "vms.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[4] = "lots"  # the `served` column of data line 3 (file line 4)
    lines[3] = ",".join(fields)
    (run_dir / "vms.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"vms\.csv: served: line 4: 'lots' is not a finite number"):
        load_run(run_dir)


@pytest.mark.parametrize(("name", "column", "word", "what"), [
    ("hosts.csv", 3, "asleep", "PowerState"),
    ("power_events.csv", 2, "hibernating", "PowerState"),
    ("migrations.csv", 6, "lost-in-space", "MigrationOutcome"),
])
def test_unknown_state_word_names_file_line_and_column(run_dir: Path, name: str, column: int, word: str,
                                                       what: str) -> None:
    """Power states and outcomes are parsed into their enums as a run is read; an unknown one is named."""
    lines = (run_dir / name).read_text().splitlines()
    fields = lines[1].split(",")
    header = lines[0].split(",")[column]
    fields[column] = word
    lines[1] = ",".join(fields)
    (run_dir / name).write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=rf"{name}: {header}: line 2: unknown {what} '{word}' \(expected one of: "):
        load_run(run_dir)


def test_states_and_outcomes_load_as_enums(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert {m.outcome for m in run.migrations} <= set(MigrationOutcome)
    assert PowerState.SUSPENDED in {e.state for e in run.power_events}


def test_short_row_is_an_error_not_a_crash(run_dir: Path) -> None:
    with (run_dir / "hosts.csv").open("a") as handle:
        handle.write("300,PM0,warehouse\n")
    with pytest.raises(UserError, match=r"hosts\.csv: line 1202: 3 fields, the header has 9"):
        load_run(run_dir)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "cannot read"),
        (b'{"scenario": "simple"}', "policy: Field required"),
        (
            b'{"scenario": "s", "policy": "p", "migration": "m", "seed": "x", "duration_s": 1, "energy_ws": 1}',
            "seed: Input should be a valid integer",
        ),
    ],
    ids=["empty", "binary", "missing-key", "wrong-type"],
)
def test_bad_summary_is_named(run_dir: Path, content: bytes, message: str) -> None:
    (run_dir / "summary.json").write_bytes(content)
    with pytest.raises(UserError, match=f"summary.json.*{message}"):
        load_run(run_dir)


def test_find_experiments_orders_scenarios_and_variants(experiment_dir: Path) -> None:
    found = find_experiments(experiment_dir)
    assert [e.scenario for e in found] == ["simple", "complex"]
    complex_ = found[1]
    assert complex_.variants == ["none", "ideal", "postcopy", "precopy"]
    assert complex_.seeds("postcopy") == [0, 1, 2] and complex_.figure_seed() == 0
    assert complex_.table_path == experiment_dir / "complex" / "table.json"


def test_find_experiments_on_an_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no experiment found"):
        find_experiments(tmp_path)
    with pytest.raises(UserError, match="output folder is missing"):
        find_experiments(tmp_path / "missing")


def test_figure_seed_prefers_a_seed_every_variant_has(tmp_path: Path, experiment_dir: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(experiment_dir / "complex", out / "complex")
    shutil.rmtree(out / "complex" / "precopy" / "seed-0")
    assert find_experiments(out)[0].figure_seed() == 1


def test_blank_cell_and_empty_name_are_named(run_dir: Path) -> None:
    lines = (run_dir / "hosts.csv").read_text().splitlines()
    fields = lines[5].split(",")
    fields[7] = ""  # watts
    lines[5] = ",".join(fields)
    (run_dir / "hosts.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"hosts\.csv: watts: line 6: missing value"):
        load_run(run_dir)
    fields[7], fields[1] = "60", " "
    lines[5] = ",".join(fields)
    (run_dir / "hosts.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"hosts\.csv: host: line 6: empty name"):
        load_run(run_dir)


def test_rows_out_of_time_order_are_sorted(run_dir: Path) -> None:
    lines = (run_dir / "vms.csv").read_text().splitlines()
    (run_dir / "vms.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    vm0 = load_run(run_dir).vms["VM0"]
    assert list(vm0.t_s) == sorted(vm0.t_s) and vm0.host[0] == "PM0"
