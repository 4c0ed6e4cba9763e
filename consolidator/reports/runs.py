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
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import schema_error
from consolidator.domain.types import MigrationOutcome, PowerState, Vocabulary

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
W = TypeVar("W", bound=Vocabulary)
M = TypeVar("M", bound=BaseModel)

HOST_COLUMNS = ("t_s", "host", "role", "state", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms")
VM_COLUMNS = ("t_s", "vm", "host", "demand", "served", "load_avg", "migrating")
MIGRATION_COLUMNS = ("vm", "src", "dst", "method", "start_s", "end_s", "outcome")
POWER_EVENT_COLUMNS = ("t_s", "host", "state")
# A host counts as "active" (powered, drawing more than S3 power) in these states.
ACTIVE_STATES = frozenset({PowerState.ON, PowerState.SUSPENDING, PowerState.RESUMING})


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
    energy_to_complete_ws: float | None = None  # equal work (issue 8): until every backlog is served
    complete_s: float | None = None
    delay_mean_s: float | None = None
    delay_p95_s: float | None = None
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
    backlog: FloatArray | None = None  # core·s waiting at the end of the tick (runs since issue 8)


@dataclass(frozen=True)
class MigrationRecord:
    """One row of ``migrations.csv``; ``end_s`` is None for a migration still running at the end."""

    vm: str
    src: str
    dst: str
    method: str
    start_s: float
    end_s: float | None
    outcome: MigrationOutcome


@dataclass(frozen=True)
class PowerEvent:
    t_s: float
    host: str
    state: PowerState


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

    def total_backlog(self) -> tuple[FloatArray, FloatArray] | None:
        """(t_s, core·s waiting over all VMs) on the hosts' tick grid; None for runs without the column."""
        if not self.vms or any(vm.backlog is None for vm in self.vms.values()):
            return None
        times = _common_times(self.hosts.values())
        total = np.zeros_like(times)
        for vm in self.vms.values():
            assert vm.backlog is not None
            index = np.clip(np.searchsorted(vm.t_s, times, side="right") - 1, 0, len(vm.t_s) - 1)
            total += vm.backlog[index]
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
    return read_model(path, RunSummary)


def read_model(path: Path, model: type[M]) -> M:
    """A JSON file validated as ``model``; a malformed one is a UserError naming the file and field."""
    data = read_json(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc.errors(), str(path)) from exc


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


@dataclass(frozen=True)
class CsvColumns:
    """A CSV file read column-wise (one tuple of strings per column); errors name file, line, column."""

    path: Path
    columns: dict[str, tuple[str, ...]]
    rows: int

    def text(self, column: str) -> StrArray:
        return np.array(self.columns[column], dtype=np.str_)

    def numbers(self, column: str) -> FloatArray:
        """A numeric column: vectorised parse, then a row-by-row pass only to name a bad value."""
        try:
            array = np.array(self.columns[column], dtype=np.float64)
        except (ValueError, TypeError):
            array = np.array([np.nan])
        if not np.all(np.isfinite(array)):
            for i in range(self.rows):
                self.number(i, column)  # raises on the first bad row
        return array

    def number(self, i: int, column: str) -> float:
        raw = self.columns[column][i]
        line = i + 2  # the header is line 1
        if raw.strip() == "":
            raise UserError(f"line {line}: missing value", source=str(self.path), field=column)
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise UserError(f"line {line}: {raw!r} is not a finite number", source=str(self.path), field=column)
        return value

    def word(self, i: int, column: str, vocabulary: type[W]) -> W:
        """A state word (power state, outcome): an unknown one names file, line and column."""
        try:
            return vocabulary.parse(self.columns[column][i])
        except ValueError as exc:
            raise UserError(f"line {i + 2}: {exc}", source=str(self.path), field=column) from None

    def words(self, column: str, vocabulary: type[Vocabulary]) -> StrArray:
        """A column of state words, checked all at once (a row-by-row pass only to name a bad one)."""
        text = self.text(column)
        bad = np.flatnonzero(~np.isin(text, [m.value for m in vocabulary]))
        if bad.size:
            self.word(int(bad[0]), column, vocabulary)  # raises, naming the line
        return text

    def optional_number(self, i: int, column: str) -> float | None:
        return None if self.columns[column][i].strip() == "" else self.number(i, column)

    def groups(self, key: str) -> dict[str, npt.NDArray[np.intp]]:
        """Row indices per name in ``key``, each in time order (by ``t_s``)."""
        names = self.text(key)
        empty = np.flatnonzero(np.char.strip(names) == "")
        if empty.size:
            raise UserError(f"line {empty[0] + 2}: empty name", source=str(self.path), field=key)
        if self.rows == 0:
            raise UserError("no rows", source=str(self.path))
        unique, inverse = np.unique(names, return_inverse=True)
        order = np.lexsort((self.numbers("t_s"), inverse))
        bounds = np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1]
        return {str(name): idx for name, idx in zip(unique, np.split(order, bounds), strict=True)}


def read_csv(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> CsvColumns:
    """The required columns of a CSV file (and those of ``optional`` it has); checks the header and that
    every row has all its fields."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            missing = [c for c in required if c not in header]
            if missing:
                raise UserError(f"missing column(s) {', '.join(missing)}", source=str(path))
            rows = list(reader)
    except FileNotFoundError as exc:
        raise UserError("file is missing", source=str(path)) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read: {exc}", source=str(path)) from exc
    width = len(header)
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        message = f"line {bad + 2}: {len(rows[bad])} fields, the header has {width}"
        raise UserError(message, source=str(path))
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    columns = {name: transposed[header.index(name)] for name in (*required, *optional) if name in header}
    return CsvColumns(path=path, columns=columns, rows=len(rows))


def load_hosts(path: Path) -> dict[str, HostSeries]:
    table = read_csv(path, HOST_COLUMNS)
    numeric = ("t_s", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms")
    cols = {c: table.numbers(c) for c in numeric}
    state, role = table.words("state", PowerState), table.text("role")
    return {
        name: HostSeries(
            name=name,
            role=str(role[idx[0]]),
            t_s=cols["t_s"][idx],
            state=state[idx],
            **{c: cols[c][idx] for c in numeric if c != "t_s"},
        )
        for name, idx in table.groups("host").items()
    }


def load_vms(path: Path) -> dict[str, VmSeries]:
    table = read_csv(path, VM_COLUMNS, optional=("backlog",))
    cols = {c: table.numbers(c) for c in ("t_s", "demand", "served", "load_avg", "migrating")}
    backlog = table.numbers("backlog") if "backlog" in table.columns else None
    where = table.text("host")
    return {
        name: VmSeries(
            name=name,
            t_s=cols["t_s"][idx],
            host=where[idx],
            demand=cols["demand"][idx],
            served=cols["served"][idx],
            load_avg=cols["load_avg"][idx],
            migrating=cols["migrating"][idx] != 0,
            backlog=backlog[idx] if backlog is not None else None,
        )
        for name, idx in table.groups("vm").items()
    }


def load_migrations(path: Path) -> tuple[MigrationRecord, ...]:
    table = read_csv(path, MIGRATION_COLUMNS)
    c = table.columns
    return tuple(
        MigrationRecord(
            vm=c["vm"][i],
            src=c["src"][i],
            dst=c["dst"][i],
            method=c["method"][i],
            start_s=table.number(i, "start_s"),
            end_s=table.optional_number(i, "end_s"),
            outcome=table.word(i, "outcome", MigrationOutcome),
        )
        for i in range(table.rows)
    )


def load_power_events(path: Path) -> tuple[PowerEvent, ...]:
    table = read_csv(path, POWER_EVENT_COLUMNS)
    c = table.columns
    return tuple(
        PowerEvent(t_s=table.number(i, "t_s"), host=c["host"][i], state=table.word(i, "state", PowerState))
        for i in range(table.rows)
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
