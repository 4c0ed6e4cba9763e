"""Workload traces: PlanetLab day folders (one file per VM) and a generic CSV (timestamp, vm, cpu).

A trace is CPU utilisation in percent of each VM's own MIPS, one value per interval (PlanetLab:
288 values at 300 s). VMs are taken in file-name order, as CloudSim does (its results depend on it).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from consolidator.domain.errors import UserError
from consolidator.traces.fetch import cache_root

log = logging.getLogger(__name__)

TRACES_ENV = "CONSOLIDATOR_PLANETLAB"
PLANETLAB_STEPS = 288
PLANETLAB_INTERVAL_S = 300.0


@dataclass(frozen=True)
class Trace:
    """CPU utilisation (percent, 0..100) of ``len(vm_names)`` VMs over ``steps`` equal intervals."""

    vm_names: tuple[str, ...]
    cpu_pct: npt.NDArray[np.float64]  # shape (vms, steps)
    interval_s: float
    source: str

    @property
    def steps(self) -> int:
        return int(self.cpu_pct.shape[1])


def _parse_values(path: Path, text: str, steps: int) -> npt.NDArray[np.float64]:
    lines = text.split()
    if len(lines) < steps:
        raise UserError(f"has {len(lines)} values, needs {steps} (one per {PLANETLAB_INTERVAL_S:g} s)",
                        source=str(path))
    values = np.empty(steps)
    for i, token in enumerate(lines[:steps]):
        try:
            values[i] = int(token)
        except ValueError:
            raise UserError(f"line {i + 1}: {token!r} is not an integer CPU percentage",
                            source=str(path)) from None
        if not 0 <= values[i] <= 100:
            raise UserError(f"line {i + 1}: CPU {token} % is out of range 0..100", source=str(path))
    return values


def parsed_cache_dir() -> Path:
    """Where parsed day folders are kept (``$XDG_CACHE_HOME`` or ``~/.cache``, then consolidator/traces)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consolidator" / "traces"


def _cache_key(folder: Path, files: list[Path], steps: int) -> str:
    """Changes when the folder, a file's name, size or modification time, or ``steps`` change."""
    h = hashlib.sha256(f"{folder.resolve()}\0{steps}".encode())
    for path in files:
        st = path.stat()
        h.update(f"\0{path.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def load_planetlab_day(folder: Path, steps: int = PLANETLAB_STEPS) -> Trace:
    """Every file of a PlanetLab day folder, in name order; the first ``steps`` values of each.

    The parsed values are kept in a cache file keyed by the files' names, sizes and times, so a
    second load of the same day reads one array instead of parsing a thousand files.
    """
    if not folder.is_dir():
        raise UserError("no such trace folder", source=str(folder))
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError("trace folder holds no files", source=str(folder))
    cached = parsed_cache_dir() / f"{_cache_key(folder, files, steps)}.npy"
    names = tuple(p.name for p in files)
    try:
        values = np.load(cached, allow_pickle=False)
        if values.shape == (len(files), steps):
            return Trace(names, values, PLANETLAB_INTERVAL_S, str(folder))
    except (OSError, ValueError):
        pass  # not cached yet, or unreadable: parse the files
    trace = _parse_day(folder, files, steps)
    _store(cached, trace.cpu_pct)
    return trace


def _store(path: Path, values: npt.NDArray[np.float64]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, values, allow_pickle=False)
        tmp.replace(path)
    except OSError as exc:  # a read-only cache only costs time
        log.debug("cannot cache parsed traces in %s: %s", path, exc)


def _parse_day(folder: Path, files: list[Path], steps: int) -> Trace:
    rows = []
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read: {exc}", source=str(path)) from exc
        rows.append(_parse_values(path, text, steps))
    log.debug("loaded %d VM traces from %s", len(files), folder)
    return Trace(tuple(p.name for p in files), np.vstack(rows), PLANETLAB_INTERVAL_S, str(folder))


def _csv_rows(path: Path) -> dict[str, dict[float, float]]:
    series: dict[str, dict[float, float]] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"timestamp", "vm", "cpu"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"missing column(s) {', '.join(sorted(missing))} (need timestamp, vm, cpu)",
                            source=str(path))
        for line, row in enumerate(reader, start=2):
            try:
                ts, cpu = float(row["timestamp"]), float(row["cpu"])
            except (TypeError, ValueError):
                raise UserError(f"line {line}: timestamp and cpu must be numbers", source=str(path)) from None
            if not (np.isfinite(ts) and 0.0 <= cpu <= 100.0):
                raise UserError(f"line {line}: cpu {row['cpu']} out of range 0..100", source=str(path))
            series.setdefault(row["vm"], {})[ts] = cpu
    return series


def load_csv(path: Path) -> Trace:
    """A long CSV with columns timestamp (s), vm, cpu (%); every VM needs a value at every timestamp."""
    if not path.is_file():
        raise UserError("no such trace file", source=str(path))
    series = _csv_rows(path)
    if not series:
        raise UserError("no rows", source=str(path))
    stamps = sorted({ts for values in series.values() for ts in values})
    if len(stamps) < 3:
        raise UserError("needs at least 3 timestamps", source=str(path))
    steps = np.diff(stamps)
    if not np.allclose(steps, steps[0]) or steps[0] <= 0:
        raise UserError("timestamps must be equally spaced", source=str(path))
    if steps[0] < 1 or steps[0] != int(steps[0]):
        raise UserError(f"timestamps {steps[0]:g} s apart: the interval must be a whole number of seconds",
                        source=str(path))
    names = sorted(series)
    cpu = np.empty((len(names), len(stamps)))
    for i, name in enumerate(names):
        values = series[name]
        if len(values) != len(stamps):
            raise UserError(f"vm {name!r} lacks values at {len(stamps) - len(values)} timestamp(s)",
                            source=str(path))
        cpu[i] = [values[ts] for ts in stamps]
    return Trace(tuple(names), cpu, float(steps[0]), str(path))


def default_traces_root() -> Path:
    """``$CONSOLIDATOR_PLANETLAB``, else ``../shared/data/planetlab`` from the working folder if it
    exists, else the download cache of ``consolidator data planetlab``."""
    if os.environ.get(TRACES_ENV):
        return Path(os.environ[TRACES_ENV])
    shared = Path("..") / "shared" / "data" / "planetlab"
    return shared if shared.is_dir() else cache_root()


def day_folder(day: str, root: Path) -> Path:
    """A day name under ``root`` (e.g. 20110303) or a folder path; UserError if it does not exist."""
    candidate = Path(day)
    folder = candidate if candidate.is_dir() and (os.sep in day or day.startswith(".")) else root / day
    if not folder.is_dir():
        raise UserError(f"no trace folder for day {day!r} ({folder} does not exist; set --traces or "
                        f"${TRACES_ENV}, or download the traces with `consolidator data planetlab`)", field="--day")
    return folder
