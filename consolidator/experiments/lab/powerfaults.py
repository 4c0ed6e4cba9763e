"""Power faults of a fault run (``drop_wol``, ``bmc_down``): before the move, its destination is put
to sleep (suspended through its agent) and woken as the manager wakes real hosts, by the power
area's ``HostWaker`` (ordered methods, retries with backoff, verification, fall-back), through a
broken path:

- ``drop_wol``: the host's namespace drops UDP port 9 (iptables): every magic packet is lost, the
  waker's Wake-on-LAN attempts go unverified, and it falls back to IPMI;
- ``bmc_down``: the host's BMC stops answering (ipmi_sim frozen with SIGSTOP, as behind a
  firewall): the IPMI power reading fails (a meter error, reported), the waker's IPMI attempts
  fail, and it falls back to Wake-on-LAN.

Each host has real peers for both: a Wake-on-LAN receiver in its namespace (``wolhost``) and an
ipmi_sim BMC on loopback (real IPMI 2.0, lanplus). Either one powering the host on makes the run
press the emulated host's power button (the agent's wake).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from consolidator.domain.types import PowerState
from consolidator.manager.client import AgentError
from consolidator.manager.engine import AgentEngine
from consolidator.power.emulators.ipmi_sim import IpmiSimBmc
from consolidator.power.ipmi import IpmiMeter, IpmiWake
from consolidator.power.meters import Credentials, MeterError
from consolidator.power.wake import HostWaker, RetryPolicy, WakeMethod
from consolidator.power.wol import WOL_PORT, WolWake

log = logging.getLogger(__name__)

POWER_FAULTS = ("drop_wol", "bmc_down")
WAKE_POLICY = RetryPolicy(attempts_per_method=2, backoff_s=0.5, verify_timeout_s=5.0, verify_poll_s=0.25,
                          send_timeout_s=10.0)
IPMI_TIMEOUT_S = 5.0
SLEEP_TIMEOUT_S = 30.0


@dataclass
class PowerOutcome:
    """What one power fault did: the wake's attempts and result, and the meter's errors."""

    injected: str
    woke: bool
    method: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    meter_errors: list[str] = field(default_factory=list)
    meter_after_w: float | None = None  # a reading once the fault is removed

    def as_json(self) -> dict[str, Any]:
        return {"woke": self.woke, "woken_by": self.method, "wake_attempts": self.attempts,
                "meter_errors": self.meter_errors, "meter_after_w": self.meter_after_w}


class HostFirmware:
    """The emulated host's WoL receiver and BMC; either powering it on calls the agent's wake."""

    def __init__(self, host: str, netns: str, address: str, client: AgentEngine, index: int) -> None:
        self.host, self.netns, self.address, self.client = host, netns, address, client
        self.mac = f"52:54:00:cf:00:{index:02x}"
        self.creds = Credentials("admin", os.urandom(8).hex())
        self.bmc = IpmiSimBmc(self.creds.username, self.creds.password, watts=53.0)
        self._wol: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._bmc_on = True
        self.woken_by: list[str] = []

    async def start(self) -> None:
        await asyncio.to_thread(self.bmc.start)
        self.bmc.set_power(True)
        self._wol = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.netns, sys.executable, "-m", "consolidator.experiments.lab.wolhost", self.mac,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL)
        assert self._wol.stdout is not None
        first = await asyncio.wait_for(self._wol.stdout.readline(), 30.0)
        if first.strip() != b"listening":
            raise RuntimeError(f"the Wake-on-LAN receiver of {self.host} did not start")
        self._task = asyncio.create_task(self._watch(), name=f"firmware-{self.host}")

    async def _watch(self) -> None:
        assert self._wol is not None and self._wol.stdout is not None
        line = asyncio.ensure_future(self._wol.stdout.readline())
        while True:
            done, _ = await asyncio.wait({line}, timeout=0.2)
            if line in done:
                if not line.result():
                    return
                if line.result().strip() == b"wake":
                    await self._power_on("wol")
                line = asyncio.ensure_future(self._wol.stdout.readline())
            on = await asyncio.to_thread(self.bmc.powered_on)
            if on and not self._bmc_on:
                await self._power_on("ipmi")
            self._bmc_on = on

    async def _power_on(self, by: str) -> None:
        self.woken_by.append(by)
        with contextlib.suppress(AgentError):
            await self.client.wake()

    def asleep(self) -> None:
        self.bmc.set_power(False)
        self._bmc_on = False

    def methods(self, first: str) -> list[WakeMethod]:
        wol = WolWake(self.mac, host=self.address, port=WOL_PORT)
        ipmi = IpmiWake("127.0.0.1", self.creds, port=self.bmc.port, timeout_s=IPMI_TIMEOUT_S)
        return [wol, ipmi] if first == "wol" else [ipmi, wol]

    def meter(self) -> IpmiMeter:
        return IpmiMeter("127.0.0.1", self.creds, port=self.bmc.port, timeout_s=IPMI_TIMEOUT_S)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._wol is not None and self._wol.returncode is None:
            self._wol.kill()
            await self._wol.wait()
        self.bmc.freeze(False)
        await asyncio.to_thread(self.bmc.stop)


def _drop_wol(netns: str, on: bool) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "iptables", "-A" if on else "-D", "INPUT", "-p", "udp",
                    "--dport", str(WOL_PORT), "-j", "DROP"], check=True, capture_output=True, timeout=30)


async def _power_state(client: AgentEngine) -> PowerState | None:
    try:
        return (await client.host_stats()).power_state
    except AgentError:
        return None


async def _read_meter(fw: HostFirmware) -> tuple[float | None, str | None]:
    try:
        return await asyncio.to_thread(fw.meter().read_watts), None
    except MeterError as exc:
        return None, str(exc)


async def sleep_and_wake(fw: HostFirmware, fault: str) -> PowerOutcome:
    """Suspend the host, break its wake path as ``fault`` says, wake it through the waker, mend the path."""
    await fw.client.suspend()
    for _ in range(int(SLEEP_TIMEOUT_S / 0.2)):
        if await _power_state(fw.client) is PowerState.SUSPENDED:
            break
        await asyncio.sleep(0.2)
    fw.asleep()
    if fault == "drop_wol":
        _drop_wol(fw.netns, True)
        injected, first = f"{fw.host}: UDP port {WOL_PORT} dropped in {fw.netns} (every WoL packet lost)", "wol"
    else:
        fw.bmc.freeze(True)
        injected, first = f"{fw.host}: BMC (ipmi_sim, 127.0.0.1:{fw.bmc.port}) frozen, answers nothing", "ipmi"
    errors: list[str] = []
    try:
        _, error = await _read_meter(fw)
        if error is not None:
            errors.append(error)

        async def verify() -> bool:
            return await _power_state(fw.client) is PowerState.ON

        result = await HostWaker(fw.host, fw.methods(first), verify, WAKE_POLICY).wake()
    finally:
        if fault == "drop_wol":
            _drop_wol(fw.netns, False)
        else:
            fw.bmc.freeze(False)
    after, _ = await _read_meter(fw)
    log.info("%s: %s", injected, result.summary())
    attempts = [{"method": a.method, "attempt": a.attempt, "ok": a.ok, "error": a.error,
                 "s": round(a.elapsed_s, 2)} for a in result.attempts]
    return PowerOutcome(injected, result.ok, result.method, attempts, errors, after)
