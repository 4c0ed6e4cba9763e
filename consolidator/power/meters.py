"""Watt meters: one interface, several sources (utilisation model, RAPL, IPMI DCMI, Redfish).

A meter's ``read_watts()`` blocks (network meters wait for their peer); the Power Monitor runs every
meter in a worker thread under a timeout, so a slow or dead meter never stalls the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerProfile, PowerState
from consolidator.models.power import host_watts


class MeterError(Exception):
    """A meter could not produce a reading (peer unreachable, refused, no such sensor, bad answer)."""


class MeterAuthError(MeterError):
    """The peer refused our credentials: retrying will not help."""


class Meter(Protocol):
    """Something that reports one node's power draw in watts."""

    kind: str  # "model", "rapl", "ipmi", "redfish"

    def read_watts(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """A BMC user. ``repr`` hides the password so it never reaches a log."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"

    @classmethod
    def from_file(cls, username: str, password_file: Path) -> Credentials:
        """Read the password from a file (first line), so it never appears in argv or shell history."""
        try:
            password = password_file.read_text().splitlines()[0] if password_file.stat().st_size else ""
        except OSError as exc:
            raise UserError(f"cannot read the password file: {exc.strerror}", source=str(password_file)) from exc
        return cls(username, password)


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6 as ``[::1]:PORT``) -> (host, port); a bad port is a UserError."""
    host, port = address, default_port
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], address)
    elif address.count(":") == 1:
        host, text = address.split(":")
        port = _port(text, address)
    if not host:
        raise UserError("empty host", field="--address")
    return host, port


def _port(text: str, address: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UserError(f"bad port in {address!r}", field="--address")
    return int(text)


class ModelMeter:
    """Watts from utilisation through ``consolidator.models.power.host_watts`` (paper's linear model or
    a SPECpower table). ``load`` returns the host's (power state, CPU load in cores) right now."""

    kind = "model"

    def __init__(self, profile: PowerProfile, cores: float,
                 load: Callable[[], tuple[PowerState, float]]) -> None:
        self.profile = profile
        self.cores = cores
        self._load = load

    def read_watts(self) -> float:
        state, cpu_load_cores = self._load()
        return host_watts(self.profile, state, cpu_load_cores, self.cores)


def local_cpu_load(interval_s: float = 0.2) -> float:
    """This machine's busy cores over ``interval_s`` from /proc/stat (the model meter's default input)."""
    def busy_total() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    b0, t0 = busy_total()
    time.sleep(interval_s)
    b1, t1 = busy_total()
    cores = os.cpu_count() or 1
    return cores * (b1 - b0) / max(1, t1 - t0)


POWERCAP_ROOT = Path("/sys/class/powercap")


class RaplMeter:
    """Package power from Linux powercap (Intel/AMD RAPL): energy counters differenced over time.

    Sums every top-level package zone (``intel-rapl:N``); handles counter wrap-around with
    ``max_energy_range_uj``. The first read samples twice ``prime_s`` apart.
    """

    kind = "rapl"

    def __init__(self, root: Path = POWERCAP_ROOT, prime_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.root = root
        self.prime_s = prime_s
        self._clock = clock
        self._sleep = sleep
        self._last: tuple[float, list[int]] | None = None
        self._zones = self._find_zones()

    def _find_zones(self) -> list[Path]:
        if not self.root.is_dir():
            raise MeterError(f"no RAPL here: {self.root} does not exist (not an Intel/AMD host, or a VM)")
        zones = sorted(p for p in self.root.iterdir()
                       if p.name.count(":") == 1 and (p / "energy_uj").exists())
        if not zones:
            raise MeterError(f"no RAPL package zone with energy_uj under {self.root}")
        return zones

    def _counters(self) -> list[int]:
        try:
            return [int((z / "energy_uj").read_text()) for z in self._zones]
        except (OSError, ValueError) as exc:  # energy_uj is root-only on recent kernels
            raise MeterError(f"cannot read RAPL energy counters: {exc}") from exc

    def _ranges(self) -> list[int]:
        out = []
        for z in self._zones:
            path = z / "max_energy_range_uj"
            out.append(int(path.read_text()) if path.exists() else 2**32)
        return out

    def read_watts(self) -> float:
        if self._last is None:
            self._last = (self._clock(), self._counters())
            self._sleep(self.prime_s)
        t0, before = self._last
        t1, after = self._clock(), self._counters()
        self._last = (t1, after)
        if t1 <= t0:
            raise MeterError("RAPL read twice at the same instant")
        joules = 0.0
        for b, a, span in zip(before, after, self._ranges(), strict=True):
            joules += ((a - b) % span) / 1e6  # modulo: the counter wrapped
        return joules / (t1 - t0)
