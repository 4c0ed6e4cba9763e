"""Redfish through sushy: Chassis Power/PowerControl reading and ComputerSystem.Reset (On).

Addresses: a full URL (``https://bmc:8443``) or ``HOST[:PORT]``, which means http:// unless the
port is 443 or omitted (then https://). TLS certificates are verified unless ``verify=False``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sushy
from sushy import exceptions as sushy_exc
from sushy.auth import BasicAuth

from consolidator.power.meters import Credentials, MeterAuthError, MeterError, split_address

log = logging.getLogger(__name__)


def redfish_url(address: str) -> str:
    """Base URL of a Redfish service from a URL or ``HOST[:PORT]``."""
    if "://" in address:
        return address.rstrip("/")
    host, port = split_address(address, 443)
    scheme = "https" if port == 443 else "http"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


class _Service:
    """A lazily opened sushy root; dropped after an error so the next call reconnects."""

    def __init__(self, address: str, creds: Credentials, timeout_s: float, verify: bool) -> None:
        self.url = redfish_url(address)
        self.creds, self.timeout_s, self.verify = creds, timeout_s, verify
        self._root: Any = None
        self._lock = threading.Lock()

    def call(self, what: str, fn: Any) -> Any:
        with self._lock:
            try:
                if self._root is None:
                    auth = BasicAuth(username=self.creds.username, password=self.creds.password)
                    self._root = sushy.Sushy(f"{self.url}/redfish/v1", auth=auth, verify=self.verify,
                                             # 1, not 0: sushy treats 0 as "use 3" (and retries
                                             # refused connections with 2 s pauses); we retry ourselves
                                             server_side_retries=1, server_side_retries_delay=0,
                                             read_timeout=self.timeout_s,
                                             connect_timeout=self.timeout_s)
                return fn(self._root)
            except sushy_exc.AccessError as exc:
                self._root = None
                raise MeterAuthError(f"Redfish {self.url} {what}: credentials refused ({exc.status_code})") from exc
            except sushy_exc.SushyError as exc:
                self._root = None
                raise MeterError(f"Redfish {self.url} {what}: {_short(exc)}") from exc
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise MeterError(f"Redfish {self.url} {what}: unexpected answer: {exc!r}") from exc


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Unable to connect" in text:
        return "no answer (connection failed)"
    return text[:200]


class RedfishMeter:
    """Chassis power: ``Chassis/{id}/Power`` → ``PowerControl[0].PowerConsumedWatts`` (first chassis
    by default), falling back to the sum of the power supplies' ``LastPowerOutputWatts``."""

    kind = "redfish"

    def __init__(self, address: str, creds: Credentials, chassis_id: str | None = None,
                 timeout_s: float = 5.0, verify: bool = True) -> None:
        self._svc = _Service(address, creds, timeout_s, verify)
        self.chassis_id = chassis_id

    def read_watts(self) -> float:
        return float(self._svc.call("power reading", self._read))

    def _read(self, root: Any) -> float:
        if self.chassis_id is None:
            members = root.get_chassis_collection().get_members()
            if not members:
                raise MeterError(f"Redfish {self._svc.url}: no chassis")
            chassis = members[0]
        else:
            chassis = root.get_chassis(f"/redfish/v1/Chassis/{self.chassis_id}")
        if "Power" not in chassis.json:
            raise MeterError(f"Redfish {self._svc.url}: chassis {chassis.identity} has no Power resource")
        power = chassis.power
        power.refresh(force=True)
        controls = power.json.get("PowerControl") or []
        if controls and controls[0].get("PowerConsumedWatts") is not None:
            return float(controls[0]["PowerConsumedWatts"])
        outputs = [s.last_power_output_watts for s in power.power_supplies if s.last_power_output_watts]
        if outputs:
            return float(sum(outputs))
        raise MeterError(f"Redfish {self._svc.url}: Power resource has no PowerConsumedWatts")


class RedfishWake:
    """Wake by ``ComputerSystem.Reset`` with ResetType ``On`` (the first system by default)."""

    name = "redfish"

    def __init__(self, address: str, creds: Credentials, system_id: str | None = None,
                 timeout_s: float = 5.0, verify: bool = True) -> None:
        self._svc = _Service(address, creds, timeout_s, verify)
        self.system_id = system_id

    def send(self) -> None:
        self._svc.call("ComputerSystem.Reset", self._reset)

    def _reset(self, root: Any) -> None:
        if self.system_id is None:
            members = root.get_system_collection().get_members()
            if not members:
                raise MeterError(f"Redfish {self._svc.url}: no computer system")
            system = members[0]
        else:
            system = root.get_system(f"/redfish/v1/Systems/{self.system_id}")
        system.reset_system(sushy.ResetType.ON)

    def powered_on(self) -> bool:
        """The system's PowerState is On (a verification a lab may use when the host has no agent)."""
        def state(root: Any) -> bool:
            members = root.get_system_collection().get_members()
            system = members[0] if self.system_id is None else root.get_system(
                f"/redfish/v1/Systems/{self.system_id}")
            return bool(system.power_state == sushy.PowerState.ON)
        return bool(self._svc.call("power state", state))

    def describe(self) -> str:
        return f"Redfish ComputerSystem.Reset(On) via {self._svc.url}"
