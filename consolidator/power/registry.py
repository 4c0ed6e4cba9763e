"""The one registration of power meters and wake methods: name -> builder with typed, validated parameters.

``consolidator power read|wake`` (``cli_support``), the power configuration file (``config``: a
``[hosts.NAME]`` table, or ``[hosts.NAME.power]`` of the manager's cluster.toml), ``consolidator power
meters|wakers --json`` and docs/power.md all read these tables, so a kind, a parameter or a default
lives here only. ``RETRY`` holds what every host's wake shares (attempts, verification time-out,
backoff); ``RetryPolicy`` takes its defaults from it.

Listing the tables imports no meter library (sushy, httpx, wakeonlan, NumPy): builders import theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from consolidator.domain.errors import UserError
from consolidator.domain.registry import Param, Table, Value, check_args

if TYPE_CHECKING:
    from consolidator.power.meters import Credentials, Meter
    from consolidator.power.wake import HostWaker, WakeMethod

Values = Mapping[str, Value]

BMC = Param("bmc", None, "HOST[:PORT] of the BMC (a URL for redfish)", kind=str, required=True)
USERNAME = Param("username", "admin", "BMC / AMT user", kind=str)
PASSWORD_FILE = Param("password_file", None, "file whose first line is the password (never given on a command line)",
                      kind=str, required=True)
INSECURE = Param("insecure", False, "do not verify the TLS certificate", kind=bool)
METER_TIMEOUT = Param("timeout_s", 10.0, "seconds to wait for the meter's answer", low=0.1, high=600.0)
CREDENTIALED = (USERNAME, PASSWORD_FILE)

# Shared by every host's wake (power.wake.RetryPolicy). The paper's hosts answer within 60 s of
# power-on (DESIGN §2); verification waits 90 s so a slow boot is not a failed wake.
RETRY = (
    Param("attempts_per_method", 3, "attempts of each method before the next", kind=int, low=1, high=100),
    Param("verify_timeout_s", 90.0, "seconds an attempt waits for the host to answer", low=0.0, high=3600.0),
    Param("backoff_s", 1.0, "first pause between attempts, s (doubles, at most 30 s)", low=0.0, high=600.0),
    Param("verify_tcp", None, "HOST:PORT that answers once the host is up (its agent); none: the method's "
                              "own check, or a sent request counts", kind=str),
)
RETRY_DEFAULTS: dict[str, Value] = {p.name: p.default for p in RETRY if p.default is not None}


def text(values: Values, name: str) -> str:
    return str(values[name])


def address(values: Values, name: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]`` of parameter ``name``; a bad one is a UserError naming that parameter."""
    from consolidator.power.meters import split_address

    try:
        return split_address(text(values, name), default_port)
    except UserError as exc:
        raise UserError(exc.message, field=name) from None


def credentials(values: Values) -> Credentials:
    from consolidator.power.meters import Credentials

    try:
        return Credentials.from_file(text(values, "username"), Path(text(values, "password_file")))
    except UserError as exc:
        raise UserError(exc.message, field="password_file") from None


@dataclass(frozen=True, slots=True)
class MeterEntry:
    """A kind of meter. ``by_caller``: the manager meters it itself from the load it polls (model)."""

    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Values], Meter]
    by_caller: bool = False


@dataclass(frozen=True, slots=True)
class WakerEntry:
    """A wake method. ``address`` is the parameter the command line's ``--address`` gives;
    ``self_check``: the method can ask the BMC whether the host is on (``powered_on``)."""

    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Values], WakeMethod]
    address: str
    self_check: bool = False


def _model_meter(values: Values) -> Meter:
    import os

    from consolidator.domain.types import PowerProfile, PowerState
    from consolidator.power.meters import ModelMeter, local_cpu_load

    cores = float(values.get("cores", os.cpu_count() or 1))
    load = float(values["cpu_load"]) if "cpu_load" in values else local_cpu_load()
    # The paper's host watts (DESIGN §2: 53 W idle, 100 W busy, linear), with utilisation taken over
    # all of this host's cores (full_load_cores=None) rather than the paper's one-core VM unit.
    return ModelMeter(PowerProfile(full_load_cores=None), cores, lambda: (PowerState.ON, load))


def _rapl_meter(values: Values) -> Meter:
    from consolidator.power.meters import RaplMeter

    return RaplMeter()


def _ipmi_meter(values: Values) -> Meter:
    from consolidator.power.ipmi import IPMI_PORT, IpmiMeter

    host, port = address(values, "bmc", IPMI_PORT)
    return IpmiMeter(host, credentials(values), port, timeout_s=float(values["timeout_s"]))


def _redfish_meter(values: Values) -> Meter:
    from consolidator.power.redfish import RedfishMeter

    return RedfishMeter(text(values, "bmc"), credentials(values), timeout_s=float(values["timeout_s"]),
                        verify=not values["insecure"])


def _wol(values: Values) -> WakeMethod:
    from consolidator.power.wol import WOL_PORT, WolWake

    host, port = address(values, "wol_address", WOL_PORT)
    try:
        return WolWake(text(values, "mac"), host, port)
    except UserError as exc:
        raise UserError(exc.message, field="mac") from None


def _ipmi_wake(values: Values) -> WakeMethod:
    from consolidator.power.ipmi import IPMI_PORT, IpmiWake

    host, port = address(values, "bmc", IPMI_PORT)
    return IpmiWake(host, credentials(values), port)


def _redfish_wake(values: Values) -> WakeMethod:
    from consolidator.power.redfish import RedfishWake

    return RedfishWake(text(values, "bmc"), credentials(values), verify=not values["insecure"])


def _amt_wake(values: Values) -> WakeMethod:
    from consolidator.power.amt import AmtWake

    return AmtWake(text(values, "amt"), credentials(values), verify=not values["insecure"])


METERS: Table[MeterEntry] = Table("meter", [
    MeterEntry("model", "the paper's linear host power (53 W idle, 100 W busy) from CPU load; in a configuration "
                        "the manager applies the host's own power profile to the load it polls",
               (Param("cores", None, "the host's cores (default: this machine's)", low=0.001),
                Param("cpu_load", None, "CPU load in cores (default: this machine's, from /proc/stat)", low=0.0)),
               _model_meter, by_caller=True),
    MeterEntry("rapl", "package power from Linux powercap (Intel/AMD RAPL energy counters) of this machine", (),
               _rapl_meter),
    MeterEntry("ipmi", "node power from the BMC's DCMI power reading (ipmitool, IPMI over LAN)",
               (BMC, *CREDENTIALED, METER_TIMEOUT), _ipmi_meter),
    MeterEntry("redfish", "node power from the BMC's Redfish Power resource (PowerConsumedWatts)",
               (BMC, *CREDENTIALED, METER_TIMEOUT, INSECURE), _redfish_meter),
])

WAKERS: Table[WakerEntry] = Table("wake method", [
    WakerEntry("wol", "Wake-on-LAN magic packet to the host's segment (no answer: verify with verify_tcp)",
               (Param("mac", None, "the host's MAC address", kind=str, required=True),
                Param("wol_address", "255.255.255.255", "HOST[:PORT] to send to: the broadcast of the host's "
                                                        "segment", kind=str)), _wol, "wol_address"),
    WakerEntry("ipmi", "IPMI chassis power on through the BMC; checks the BMC reports power on",
               (BMC, *CREDENTIALED), _ipmi_wake, "bmc", self_check=True),
    WakerEntry("redfish", "Redfish ComputerSystem.Reset(On) through the BMC; checks the system's PowerState",
               (BMC, *CREDENTIALED, INSECURE), _redfish_wake, "bmc", self_check=True),
    WakerEntry("amt", "Intel AMT power on (WS-Management RequestPowerStateChange)",
               (Param("amt", None, "HOST[:PORT] or URL of the AMT interface (port 16992)", kind=str, required=True),
                *CREDENTIALED, INSECURE), _amt_wake, "amt"),
])


def build(entry: MeterEntry | WakerEntry, args: Mapping[str, object], field: Callable[[str], str] = lambda k: k,
          source: str | None = None) -> Meter | WakeMethod:
    """The meter or wake method of ``entry`` from raw ``args`` (None: not given); every mistake is a
    UserError naming ``source`` and ``field(parameter)``."""
    what = "meter" if isinstance(entry, MeterEntry) else "wake method"
    try:
        values = check_args(entry.params, args, f"the {entry.name} {what}", field)
        try:
            return entry.build(values)
        except UserError as exc:
            raise UserError(exc.message, field=field(exc.field) if exc.field else None) from None
    except UserError as exc:
        raise UserError(exc.message, source=source, field=exc.field) from None


def meter(kind: object, args: Mapping[str, object], field: Callable[[str], str] = lambda k: k,
          source: str | None = None) -> Meter:
    """The meter of ``kind`` from the parameters of that kind in ``args`` (others are ignored)."""
    entry = METERS.get(kind, field("meter"), source)
    return cast("Meter", build(entry, {p.name: args.get(p.name) for p in entry.params}, field, source))


def host_waker(host: str, kinds: Sequence[object], args: Mapping[str, object],
               field: Callable[[str], str] = lambda k: k, source: str | None = None,
               self_check: bool = False) -> HostWaker:
    """A HostWaker trying the wake methods ``kinds`` in order, each from its parameters in ``args``,
    with the ``RETRY`` parameters in ``args``. Verification: ``verify_tcp`` if given, else (with
    ``self_check``) a lone method's own check of the BMC, else none (a sent request counts)."""
    from consolidator.power.wake import HostWaker, RetryPolicy, in_thread, tcp_answers

    entries = [WAKERS.get(kind, field("wake"), source) for kind in kinds]
    methods = [cast("WakeMethod", build(e, {p.name: args.get(p.name) for p in e.params}, field, source))
               for e in entries]
    try:
        retry = check_args(RETRY, {p.name: args.get(p.name) for p in RETRY}, "wake", field)
        verify = None
        if "verify_tcp" in retry:
            host_name, port = address(retry, "verify_tcp", 0)
            if port == 0:
                raise UserError("needs HOST:PORT", field="verify_tcp")
            verify = tcp_answers(host_name, port)
    except UserError as exc:
        raise UserError(exc.message, source=source,
                        field=field(exc.field) if exc.field == "verify_tcp" else exc.field) from None
    if verify is None and self_check and len(entries) == 1 and entries[0].self_check:
        verify = in_thread(methods[0].powered_on)  # type: ignore[attr-defined]  # self_check: it has one
    policy = RetryPolicy(attempts_per_method=int(retry["attempts_per_method"]),
                         verify_timeout_s=float(retry["verify_timeout_s"]), backoff_s=float(retry["backoff_s"]))
    return HostWaker(host, methods, verify, policy)
