"""Reads stored run folders (docs/run-format.md) into typed, validated time series for the figures.

Every problem with a file (missing, unreadable, a missing column, a value that is not a number)
becomes a ``UserError`` that names the file, the line and the column: a report is rebuilt from
stored runs, so a broken run must say where it is broken.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from consolidator.domain.errors import UserError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]

HOST_COLUMNS = ("t_s", "host", "role", "state", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms")
VM_COLUMNS = ("t_s", "vm", "host", "demand", "served", "load_avg", "migrating")
MIGRATION_COLUMNS = ("vm", "src", "dst", "method", "start_s", "end_s", "outcome")
POWER_EVENT_COLUMNS = ("t_s", "host", "state")
# A host counts as "active" (powered, drawing more than S3 power) in these states.
ACTIVE_STATES = frozenset({"on", "suspending", "resuming"})


class RunSummary(BaseModel):
    """``summary.json``: the keys the report needs; unknown keys are kept in ``extra``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scenario: str
    policy: str
    migration: str
    seed: int
    duration_s: float
    tick_s: float = 1.0
    energy_ws: float
    energy_ws_by_host: dict[str, float] = {}
    demand_core_s: float | None = None
    unserved_core_s: float | None = None
    unserved_cpu_pct: float | None = None
    overload_s: float | None = None
    migrations: int | None = None
    migrations_cancelled: int | None = None
    suspends: int | None = None
    wakes: int | None = None
    params: dict[str, Any] = {}


@dataclass(frozen=True)
class HostSeries:
    """One host's per-tick rows from ``hosts.csv``, in time order."""

    name: str
    role: str
    t_s: FloatArray
    state: StrArray
    cpu_demand: FloatArray
    cpu_served: FloatArray
    cpu_unserved: FloatArray
    watts: FloatArray
    n_vms: FloatArray

    @property
    def active(self) -> npt.NDArray[np.bool_]:
        return np.isin(self.state, list(ACTIVE_STATES))


@dataclass(frozen=True)
class VmSeries:
    """One VM's per-tick rows from ``vms.csv``, in time order."""

    name: str
    t_s: FloatArray
    host: StrArray
    demand: FloatArray
    served: FloatArray
    load_avg: FloatArray
    migrating: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MigrationRecord:
    """One row of ``migrations.csv``; ``end_s`` is None for a migration still running at the end."""

    vm: str
    src: str
    dst: str
    method: str
    start_s: float
    end_s: float | None
    outcome: str


@dataclass(frozen=True)
class PowerEvent:
    t_s: float
    host: str
    state: str


@dataclass(frozen=True)
class Run:
    """Everything one run folder holds that the report draws."""

    path: Path
    summary: RunSummary
    hosts: dict[str, HostSeries]
    vms: dict[str, VmSeries]
    migrations: tuple[MigrationRecord, ...]
    power_events: tuple[PowerEvent, ...]

    @property
    def label(self) -> str:
        return f"{self.summary.policy}/{self.summary.migration} seed {self.summary.seed}"

    def total_watts(self) -> tuple[FloatArray, FloatArray]:
        """(t_s, watts summed over hosts) on the hosts' common tick grid."""
        times = _common_times(self.hosts.values())
        total = np.zeros_like(times)
        for host in self.hosts.values():
            total += np.interp(times, host.t_s, host.watts)
        return times, total

    def active_hosts(self) -> tuple[FloatArray, FloatArray]:
        """(t_s, number of hosts in an active power state) on the common tick grid."""
        times = _common_times(self.hosts.values())
        count = np.zeros_like(times)
        for host in self.hosts.values():
            index = np.searchsorted(host.t_s, times, side="right") - 1
            count += host.active[np.clip(index, 0, len(host.t_s) - 1)]
        return times, count


def _common_times(hosts: Any) -> FloatArray:
    series = [h.t_s for h in hosts]
    return np.unique(np.concatenate(series)) if series else np.zeros(0)


def load_summary(path: Path) -> RunSummary:
    """Parse and validate ``summary.json``."""
    data = read_json(path)
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise UserError(first["msg"], source=str(path), field=field) from exc


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing, unreadable or malformed file is a UserError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UserError("file is missing", source=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read: {exc}", source=str(path)) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON (line {exc.lineno}: {exc.msg})", source=str(path)) from exc


def read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; checks the header has every required column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise UserError(f"missing column(s) {', '.join(missing)}", source=str(path))
            return list(reader)
    except FileNotFoundError as exc:
        raise UserError("file is missing", source=str(path)) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read: {exc}", source=str(path)) from exc


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    raw = row.get(column)
    if raw is None or raw.strip() == "":
        raise UserError(f"line {line}: missing value", source=str(path), field=column)
    try:
        value = float(raw) if raw is not None else float("nan")
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise UserError(f"line {line}: {raw!r} is not a finite number", source=str(path), field=column)
    return value


def _optional_number(path: Path, line: int, row: dict[str, str], column: str) -> float | None:
    if (row.get(column) or "").strip() == "":
        return None
    return _number(path, line, row, column)


def _columns(path: Path, rows: list[dict[str, str]], numeric: tuple[str, ...]) -> dict[str, FloatArray]:
    """Numeric columns as arrays: vectorised parse, then a row-by-row pass only to name a bad value."""
    values = {}
    for column in numeric:
        try:
            array = np.array([row[column] for row in rows], dtype=np.float64)
        except (ValueError, TypeError):
            array = np.array([np.nan])
        if not np.all(np.isfinite(array)):
            for i, row in enumerate(rows):
                _number(path, i + 2, row, column)  # +2: the header is line 1; raises on the bad row
        values[column] = array
    return values


def _group_rows(path: Path, rows: list[dict[str, str]], key: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        name = (row.get(key) or "").strip()
        if not name:
            raise UserError(f"line {i + 2}: empty name", source=str(path), field=key)
        groups.setdefault(name, []).append(i)
    if not groups:
        raise UserError("no rows", source=str(path))
    return groups


def load_hosts(path: Path) -> dict[str, HostSeries]:
    rows = read_csv(path, HOST_COLUMNS)
    numeric = ("t_s", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms")
    cols = _columns(path, rows, numeric)
    text = {c: np.array([r[c] for r in rows], dtype=np.str_) for c in ("state", "role")}
    hosts = {}
    for name, index in _group_rows(path, rows, "host").items():
        idx = np.array(index)
        idx = idx[np.argsort(cols["t_s"][idx], kind="stable")]
        hosts[name] = HostSeries(
            name=name,
            role=str(text["role"][idx[0]]),
            t_s=cols["t_s"][idx],
            state=text["state"][idx],
            **{c: cols[c][idx] for c in numeric if c != "t_s"},
        )
    return hosts


def load_vms(path: Path) -> dict[str, VmSeries]:
    rows = read_csv(path, VM_COLUMNS)
    numeric = ("t_s", "demand", "served", "load_avg", "migrating")
    cols = _columns(path, rows, numeric)
    where = np.array([r["host"] for r in rows], dtype=np.str_)
    vms = {}
    for name, index in _group_rows(path, rows, "vm").items():
        idx = np.array(index)
        idx = idx[np.argsort(cols["t_s"][idx], kind="stable")]
        vms[name] = VmSeries(
            name=name,
            t_s=cols["t_s"][idx],
            host=where[idx],
            demand=cols["demand"][idx],
            served=cols["served"][idx],
            load_avg=cols["load_avg"][idx],
            migrating=cols["migrating"][idx] != 0,
        )
    return vms


def load_migrations(path: Path) -> tuple[MigrationRecord, ...]:
    rows = read_csv(path, MIGRATION_COLUMNS)
    records = []
    for i, row in enumerate(rows):
        records.append(
            MigrationRecord(
                vm=row["vm"],
                src=row["src"],
                dst=row["dst"],
                method=row["method"],
                start_s=_number(path, i + 2, row, "start_s"),
                end_s=_optional_number(path, i + 2, row, "end_s"),
                outcome=row["outcome"],
            )
        )
    return tuple(records)


def load_power_events(path: Path) -> tuple[PowerEvent, ...]:
    rows = read_csv(path, POWER_EVENT_COLUMNS)
    return tuple(
        PowerEvent(t_s=_number(path, i + 2, row, "t_s"), host=row["host"], state=row["state"])
        for i, row in enumerate(rows)
    )


def load_run(folder: Path) -> Run:
    """Load one run folder; a missing folder or file, or a malformed one, is a UserError naming it."""
    if not folder.is_dir():
        raise UserError("run folder is missing", source=str(folder))
    run = Run(
        path=folder,
        summary=load_summary(folder / "summary.json"),
        hosts=load_hosts(folder / "hosts.csv"),
        vms=load_vms(folder / "vms.csv"),
        migrations=load_migrations(folder / "migrations.csv"),
        power_events=load_power_events(folder / "power_events.csv"),
    )
    log.debug("loaded %s: %d hosts, %d VMs", folder, len(run.hosts), len(run.vms))
    return run
