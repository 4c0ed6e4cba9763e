"""Per-host power configuration from a TOML file: meters for the Power Monitor, ordered wake methods.

```toml
[defaults]                       # optional; every key may be overridden per host
username = "admin"
password_file = "/etc/consolidator/bmc.pw"
attempts_per_method = 3
verify_timeout_s = 90

[hosts.pm1]
meter = "ipmi"                   # model | rapl | ipmi | redfish
bmc = "10.0.0.11"                # HOST[:PORT] of the BMC (ipmi / redfish)
wake = ["wol", "ipmi", "redfish", "amt"]   # tried in this order
mac = "52:54:00:12:34:56"        # for wol
wol_address = "10.0.0.255:9"     # broadcast of the host's segment
amt = "10.0.0.21:16992"          # for amt
verify_tcp = "10.0.0.1:8700"     # the host's agent: "woken" means this answers
```

Every error names the file and the field (``UserError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import read_toml
from consolidator.power.amt import AmtWake
from consolidator.power.ipmi import IPMI_PORT, IpmiMeter, IpmiWake
from consolidator.power.meters import Credentials, Meter, RaplMeter, split_address
from consolidator.power.redfish import RedfishMeter, RedfishWake
from consolidator.power.wake import HostWaker, PowerController, RetryPolicy, Suspender, WakeMethod, tcp_answers
from consolidator.power.wol import WOL_PORT, WolWake

METERS = ("model", "rapl", "ipmi", "redfish")
WAKES = ("wol", "ipmi", "redfish", "amt")
KEYS = {"meter", "bmc", "wake", "mac", "wol_address", "amt", "verify_tcp", "username", "password_file",
        "attempts_per_method", "verify_timeout_s", "backoff_s", "insecure"}


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
        _Host(source, name, {**defaults, **table}, field_prefix(name)).add_to(cfg)
    return cfg


class _Host:
    """One [hosts.NAME] table with the defaults merged in."""

    def __init__(self, source: str, name: str, t: dict[str, Any], prefix: str) -> None:
        self.source, self.name, self.t, self.prefix = source, name, t, prefix
        unknown = sorted(set(t) - KEYS)
        if unknown:
            self.fail(unknown[0], f"unknown key (known: {', '.join(sorted(KEYS))})")

    def fail(self, key: str, message: str) -> None:
        raise UserError(message, source=self.source, field=f"{self.prefix}.{key}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.t.get(key, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
            names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            self.fail(key, f"must be a {names}, got {value!r}")
        return value

    def addr(self, key: str, text: str, default_port: int) -> tuple[str, int]:
        try:
            return split_address(text, default_port)
        except UserError as exc:
            self.fail(key, exc.message)
            raise

    def need(self, key: str, why: str) -> str:
        value = self.get(key, str)
        if not value:
            self.fail(key, f"required for {why}")
        return str(value)

    def creds(self) -> Credentials:
        pw = self.need("password_file", "BMC / AMT access")
        try:
            return Credentials.from_file(self.get("username", str, "admin"), Path(pw))
        except UserError as exc:
            self.fail("password_file", exc.message)
            raise

    def add_to(self, cfg: PowerConfig) -> None:
        meter = self.get("meter", str, "model")
        if meter not in METERS:
            self.fail("meter", f"unknown meter {meter!r} (known: {', '.join(METERS)})")
        verify_tls = not self.get("insecure", bool, False)
        if meter == "model":
            cfg.model_nodes.append(self.name)
        elif meter == "rapl":
            cfg.meters[self.name] = RaplMeter()
        elif meter == "ipmi":
            host, port = self.addr("bmc", self.need("bmc", "the ipmi meter"), IPMI_PORT)
            cfg.meters[self.name] = IpmiMeter(host, self.creds(), port)
        else:
            cfg.meters[self.name] = RedfishMeter(self.need("bmc", "the redfish meter"), self.creds(),
                                                 verify=verify_tls)
        wakes = self.get("wake", list, [])
        if wakes:
            methods = [self.method(w, verify_tls) for w in wakes]
            verify = None
            if self.get("verify_tcp", str):
                host, port = self.addr("verify_tcp", self.t["verify_tcp"], 0)
                if port == 0:
                    self.fail("verify_tcp", "needs HOST:PORT")
                verify = tcp_answers(host, port)
            policy = RetryPolicy(attempts_per_method=int(self.get("attempts_per_method", int, 3)),
                                 verify_timeout_s=float(self.get("verify_timeout_s", (int, float), 90.0)),
                                 backoff_s=float(self.get("backoff_s", (int, float), 1.0)))
            cfg.controller.wakers[self.name] = HostWaker(self.name, methods, verify, policy)

    def method(self, kind: object, verify_tls: bool) -> WakeMethod:
        if kind not in WAKES:
            self.fail("wake", f"unknown wake method {kind!r} (known: {', '.join(WAKES)})")
        if kind == "wol":
            host, port = self.addr("wol_address", self.get("wol_address", str, "255.255.255.255"), WOL_PORT)
            try:
                return WolWake(self.need("mac", "wol"), host, port)
            except UserError as exc:
                self.fail("mac", exc.message)
                raise
        if kind == "ipmi":
            host, port = self.addr("bmc", self.need("bmc", "ipmi wake"), IPMI_PORT)
            return IpmiWake(host, self.creds(), port)
        if kind == "redfish":
            return RedfishWake(self.need("bmc", "redfish wake"), self.creds(), verify=verify_tls)
        return AmtWake(self.need("amt", "amt wake"), self.creds(), verify=verify_tls)
