"""Row <-> value conversions for the run database: samples, power readings and domain events."""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from typing import Any

from consolidator.domain.events import Event
from consolidator.domain.samples import HostSample, PowerSample, VmSample
from consolidator.domain.types import Vocabulary

HOST_COLUMNS = ("t_s", "host", "cpu_load", "mem_used_mib", "watts", "net_bytes_per_s", "disk_bytes_per_s")
VM_COLUMNS = ("t_s", "vm", "host", "cpu_load", "dirty_bytes_per_s")
POWER_COLUMNS = ("t_s", "node", "meter", "watts", "error")


def host_row(s: HostSample) -> tuple[Any, ...]:
    return (s.t_s, s.host, s.cpu_load, s.mem_used_mib, s.watts, s.net_bytes_per_s, s.disk_bytes_per_s)


def vm_row(s: VmSample) -> tuple[Any, ...]:
    return (s.t_s, s.vm, s.host, s.cpu_load, s.dirty_bytes_per_s)


def power_row(s: PowerSample) -> tuple[Any, ...]:
    return (s.t_s, s.node, s.meter, s.watts, s.error)


def host_from_row(row: Any) -> HostSample:
    return HostSample(row.t_s, row.host, row.cpu_load, row.mem_used_mib, row.watts,
                      row.net_bytes_per_s, row.disk_bytes_per_s)


def vm_from_row(row: Any) -> VmSample:
    return VmSample(row.t_s, row.vm, row.host, row.cpu_load, row.dirty_bytes_per_s)


def power_from_row(row: Any) -> PowerSample:
    return PowerSample(row.t_s, row.node, row.meter, row.watts, row.error)


_EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Event)}


def encode_event(ev: Event) -> dict[str, Any]:
    """An event as the columns of the ``events`` table (kind, t_s, host, vm, JSON payload)."""
    payload = {f.name: _plain(getattr(ev, f.name)) for f in dataclasses.fields(ev)}
    host = getattr(ev, "host", None) or getattr(ev, "src", None)
    return {"t_s": ev.t_s, "kind": type(ev).__name__, "host": host, "vm": getattr(ev, "vm", None),
            "payload": json.dumps(payload, sort_keys=True)}


def decode_event(kind: str, payload: str) -> Event:
    """Rebuild the typed event from its stored kind and JSON payload (enums restored)."""
    cls = _EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r} in the events table")
    hints = typing.get_type_hints(cls)
    data = json.loads(payload)
    args = {}
    for name, value in data.items():
        hint = hints.get(name)
        if isinstance(hint, type) and issubclass(hint, Vocabulary):  # unknown word: error naming the field
            value = hint.parse(value, f"{kind}.{name}")
        args[name] = value
    return typing.cast(Event, cls(**args))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
