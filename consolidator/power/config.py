"""Per-host power configuration from a TOML file: meters for the Power Monitor, ordered wake methods.

```toml
[defaults]                       # optional; every key may be overridden per host
username = "admin"
password_file = "/etc/consolidator/bmc.pw"
attempts_per_method = 3
verify_timeout_s = 90

[hosts.pm1]
meter = "ipmi"                   # consolidator power meters: model | rapl | ipmi | redfish
bmc = "10.0.0.11"                # HOST[:PORT] of the BMC (ipmi / redfish)
wake = ["wol", "ipmi", "redfish", "amt"]   # tried in this order (consolidator power wakers)
mac = "52:54:00:12:34:56"        # for wol
wol_address = "10.0.0.255:9"     # broadcast of the host's segment
amt = "10.0.0.21:16992"          # for amt
verify_tcp = "10.0.0.1:8700"     # the host's agent: "woken" means this answers
```

The kinds, their keys and defaults are declared once in ``consolidator.power.registry`` (listed by
``consolidator power meters|wakers``). Every error names the file and the field (``UserError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import Fields, read_toml
from consolidator.power.meters import Meter
from consolidator.power.registry import METERS, RETRY, WAKERS, host_waker, meter
from consolidator.power.wake import PowerController, Suspender

# Every key a host's table may hold: the table's choice of meter and wake methods, the parameters of
# every kind the file can build (power.registry) and the wake's retry parameters.
KEYS = {"meter", "wake", *(p.name for e in METERS if not e.by_caller for p in e.params),
        *(p.name for e in WAKERS for p in e.params), *(p.name for p in RETRY)}


@dataclass
class PowerConfig:
    """What the file describes: network meters per node (``model`` nodes are metered by the caller,
    which knows their utilisation) and a PowerController with each host's ordered wake methods."""

    meters: dict[str, Meter] = field(default_factory=dict)
    model_nodes: list[str] = field(default_factory=list)
    controller: PowerController = field(default_factory=lambda: PowerController({}))


def load_power_config(path: Path, suspender: Suspender | None = None) -> PowerConfig:
    """Parse and validate ``path``; raises UserError naming the file and field on any mistake."""
    return power_config_from(read_toml(path, "a power configuration"), str(path), suspender)


def power_config_from(data: dict[str, Any], source: str, suspender: Suspender | None = None,
                      field_prefix: Callable[[str], str] = lambda host: f"hosts.{host}") -> PowerConfig:
    """Validate a parsed document (``defaults`` and ``hosts`` tables); errors name ``source`` and the
    field as ``field_prefix(host).key`` (the manager's cluster.toml nests these under hosts.NAME.power)."""
    defaults = data.get("defaults", {})
    hosts = data.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise UserError("needs at least one [hosts.NAME] table", source=source, field="hosts")
    if not isinstance(defaults, dict):
        raise UserError("must be a table", source=source, field="defaults")
    cfg = PowerConfig(controller=PowerController({}, suspender))
    for name, table in hosts.items():
        if not isinstance(table, dict):
            raise UserError("must be a table", source=source, field=field_prefix(name))
        _add_host(Fields({**defaults, **table}, source, field_prefix(name)), name, cfg)
    return cfg


def _add_host(fields: Fields, name: str, cfg: PowerConfig) -> None:
    """One [hosts.NAME] table (defaults merged in): its meter and its ordered wake methods."""
    fields.only(KEYS)
    kind = fields.get("meter", str, "model")
    if kind in METERS and METERS.get(kind).by_caller:
        cfg.model_nodes.append(name)
    else:
        cfg.meters[name] = meter(kind, fields.table, fields.where, fields.source)
    wakes = fields.get("wake", list, [])
    if wakes:
        cfg.controller.wakers[name] = host_waker(name, wakes, fields.table, fields.where, fields.source)
