"""Meters and wakers from command-line arguments (``consolidator power read|wake``), through the one
registration (``power.registry``): an option's value goes to the parameter of the same name, and
``--address`` to the kind's address (the BMC, the AMT interface, or where a WoL packet goes)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping

from consolidator.power import registry
from consolidator.power.meters import Meter, MeterError
from consolidator.power.wake import HostWaker

# Parameters whose command-line option is not ``--<name with dashes>``.
FLAGS = {"bmc": "--address", "amt": "--address", "wol_address": "--address", "timeout_s": "--timeout",
         "attempts_per_method": "--attempts", "verify_timeout_s": "--verify-timeout", "backoff_s": "--backoff"}


def flag(param: str) -> str:
    """The command-line option that gives ``param`` (errors name it)."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def build_meter(kind: str, address: str | None, options: Mapping[str, object]) -> Meter:
    """The meter ``kind`` for one node from its options (bad ones raise UserError naming the option)."""
    return registry.meter(kind, {**options, "bmc": address}, flag)


def read_once(meter: Meter, timeout_s: float) -> float:
    """One reading, abandoned after ``timeout_s`` (the meter's thread is left to finish on its own)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(meter.read_watts).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError as exc:
        raise MeterError(f"{meter.kind} meter: no reading within {timeout_s:g} s") from exc
    finally:
        pool.shutdown(wait=False)


def build_waker(kind: str, address: str | None, options: Mapping[str, object]) -> HostWaker:
    """A one-method HostWaker from its options; IPMI and Redfish check the BMC unless ``verify_tcp``."""
    entry = registry.WAKERS.get(kind, "--method")
    name = address or str(options.get("mac") or kind)
    return registry.host_waker(name, [kind], {**options, entry.address: address}, flag, self_check=True)
