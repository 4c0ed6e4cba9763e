"""Builds meters and wakers from command-line arguments (``consolidator power read|wake``)."""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerProfile, PowerState
from consolidator.power.amt import AmtWake
from consolidator.power.ipmi import IPMI_PORT, IpmiMeter, IpmiWake
from consolidator.power.meters import Credentials, Meter, MeterError, ModelMeter, RaplMeter, split_address
from consolidator.power.redfish import RedfishMeter, RedfishWake
from consolidator.power.wake import HostWaker, RetryPolicy, Verify, in_thread, tcp_answers
from consolidator.power.wol import WOL_PORT, WolWake


def credentials(username: str, password_file: Path | None) -> Credentials:
    if password_file is None:
        raise UserError("this method needs --password-file (the password is never taken on the command line)",
                        field="--password-file")
    return Credentials.from_file(username, password_file)


def _need(address: str | None, what: str) -> str:
    if not address:
        raise UserError(f"{what} needs --address HOST[:PORT]", field="--address")
    return address


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


def build_meter(kind: str, address: str | None, username: str, password_file: Path | None,
                cpu_load: float | None, cores: float | None, timeout_s: float, verify_tls: bool) -> Meter:
    """The meter ``kind`` for one node, from CLI arguments (bad ones raise UserError)."""
    if kind == "ipmi":
        host, port = split_address(_need(address, "--meter ipmi"), IPMI_PORT)
        return IpmiMeter(host, credentials(username, password_file), port, timeout_s=timeout_s)
    if kind == "redfish":
        return RedfishMeter(_need(address, "--meter redfish"), credentials(username, password_file),
                            timeout_s=timeout_s, verify=verify_tls)
    if kind == "rapl":
        return RaplMeter()
    n_cores = cores if cores is not None else float(os.cpu_count() or 1)
    if n_cores <= 0 or (cpu_load is not None and cpu_load < 0):
        raise UserError("--cores must be > 0 and --cpu-load >= 0", field="--cpu-load")
    load = cpu_load if cpu_load is not None else local_cpu_load()
    # The paper's host watts (DESIGN §2: 53 W idle, 100 W busy, linear), with utilisation taken over
    # all of this host's cores (full_load_cores=None) rather than the paper's one-core VM unit.
    return ModelMeter(PowerProfile(full_load_cores=None), n_cores, lambda: (PowerState.ON, load))


def read_once(meter: Meter, timeout_s: float) -> float:
    """One reading, abandoned after ``timeout_s`` (the meter's thread is left to finish on its own)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(meter.read_watts).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError as exc:
        raise MeterError(f"{meter.kind} meter: no reading within {timeout_s:g} s") from exc
    finally:
        pool.shutdown(wait=False)


def build_waker(kind: str, address: str | None, mac: str | None, username: str, password_file: Path | None,
                attempts: int, verify_tcp: str | None, verify_timeout_s: float, backoff_s: float,
                verify_tls: bool) -> HostWaker:
    """A one-method HostWaker from CLI arguments, with the verification the method allows."""
    verify: Verify | None = None
    if verify_tcp:
        host, port = split_address(verify_tcp, 0)
        if port == 0:
            raise UserError("--verify-tcp needs HOST:PORT", field="--verify-tcp")
        verify = tcp_answers(host, port)
    if kind == "wol":
        if not mac:
            raise UserError("--method wol needs --mac (the host's MAC address)", field="--mac")
        host, port = split_address(address or "255.255.255.255", WOL_PORT)
        method: object = WolWake(mac, host, port)
    elif kind == "ipmi":
        host, port = split_address(_need(address, "--method ipmi"), IPMI_PORT)
        creds = credentials(username, password_file)
        ipmi = IpmiWake(host, creds, port)
        method, verify = ipmi, verify or in_thread(ipmi.powered_on)
    elif kind == "redfish":
        rf = RedfishWake(_need(address, "--method redfish"), credentials(username, password_file),
                         verify=verify_tls)
        method, verify = rf, verify or in_thread(rf.powered_on)
    else:
        method = AmtWake(_need(address, "--method amt"), credentials(username, password_file), verify=verify_tls)
    policy = RetryPolicy(attempts_per_method=attempts, backoff_s=backoff_s, verify_timeout_s=verify_timeout_s)
    return HostWaker(address or mac or kind, [method], verify, policy)  # type: ignore[list-item]

