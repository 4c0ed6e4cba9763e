"""The QEMU VM driver (QMP via ``qemu.qmp``): VMs, live migration, guest control, adoption."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from consolidator.agent.qemu.driver import DriverSettings, QemuDriver

__all__ = ["DriverSettings", "QemuDriver", "driver_from_config"]

_KEYS = {"qemu_binary": str, "accel": str, "netns": str, "boot_timeout_s": float, "postcopy_preempt": bool,
         "host_cpu_cap_cores": float}


def driver_from_config(table: dict[str, Any], state_dir: Path | str, migration_ports: tuple[int, int] = (49152, 49407),
                       tls_dir: Path | None = None) -> QemuDriver:
    """Build the driver from an agent's ``[driver]`` table; unknown keys or wrong types raise ValueError."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ValueError(f"driver: unknown keys {unknown}; known: {sorted(_KEYS)}")
    args: dict[str, Any] = {}
    for key, value in table.items():
        kind = _KEYS[key]
        if not isinstance(value, (int, float) if kind is float else kind) or (
                isinstance(value, bool) and kind is not bool):
            raise ValueError(f"driver.{key} must be a {kind.__name__}, not {value!r}")
        args[key] = kind(value)
        if kind is float and not (math.isfinite(args[key]) and 0 < args[key] <= 3600):
            raise ValueError(f"driver.{key} must be a finite number of seconds in (0, 3600], not {value!r}")
    return QemuDriver(DriverSettings(state_dir=Path(state_dir), migration_ports=migration_ports, tls_dir=tls_dir,
                                     **args))
