"""A host's power state as its agent sees it: real S3 through systemd, or an emulated S3.

An emulated host (config ``emulated = true``) spends ``suspend_s`` in SUSPENDING, then sits in
SUSPENDED (refusing VM work, metered at S3 watts) until its wake endpoint or power controller
wakes it, then spends ``resume_s`` in RESUMING. A real host runs ``systemctl suspend`` and notices
its own resume from the jump between CLOCK_BOOTTIME (counts sleep) and CLOCK_MONOTONIC (does not).
"""

from __future__ import annotations

import asyncio
import logging
import time

from consolidator.agent.api.config import AgentConfig
from consolidator.agent.api.errors import Conflict
from consolidator.domain.types import PowerState, SleepMode
from consolidator.protocol.eventlog import EventLog
from consolidator.protocol.schemas import EventKind

log = logging.getLogger(__name__)

SUSPEND_ARGV = ("systemctl", "suspend")
POWEROFF_ARGV = ("systemctl", "poweroff")  # config sleep = "off": the host powers off; its BMC wakes it
RESUME_POLL_S = 0.5
SLEEP_JUMP_S = 1.0  # a boottime-monotonic gap larger than this means the machine slept


def _sleep_gap_s() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME) - time.clock_gettime(time.CLOCK_MONOTONIC)


class HostPower:
    """Power lifecycle of one host: on -> suspending -> suspended -> resuming -> on."""

    def __init__(self, config: AgentConfig, events: EventLog) -> None:
        self._config = config
        self._events = events
        self.state = PowerState.ON
        self._task: asyncio.Task[None] | None = None

    def require_on(self) -> None:
        if self.state != PowerState.ON:
            raise Conflict(f"host {self._config.name} is {self.state.value}, needs on")

    def watts(self, cpu_load_cores: float) -> float:
        """Modelled power of this host now (the paper's linear model; S3 watts when suspended)."""
        from consolidator.models.power import host_watts  # the simulator's model: same numbers

        return host_watts(self._config.power.profile(), self.state, cpu_load_cores, self._config.cores)

    async def _set(self, state: PowerState, detail: str = "") -> None:
        self.state = state
        await self._events.append(EventKind.HOST_POWER, power_state=state, detail=detail)

    async def suspend(self) -> PowerState:
        self.require_on()
        await self._set(PowerState.SUSPENDING)
        run = self._emulated_suspend() if self._config.emulated else self._real_suspend()
        self._task = asyncio.create_task(run)
        return self.state

    async def wake(self) -> PowerState:
        """Emulated hosts only: a real host is woken by its power controller, not by itself."""
        if not self._config.emulated:
            raise Conflict("a real host is woken by its power controller (WoL, IPMI, Redfish, AMT)")
        if self.state != PowerState.SUSPENDED:
            raise Conflict(f"host {self._config.name} is {self.state.value}, needs suspended")
        await self._set(PowerState.RESUMING)
        self._task = asyncio.create_task(self._emulated_resume())
        return self.state

    async def _emulated_suspend(self) -> None:
        await asyncio.sleep(self._config.power.suspend_s)
        await self._set(PowerState.SUSPENDED, "emulated S3")

    async def _emulated_resume(self) -> None:
        await asyncio.sleep(self._config.power.resume_s)
        await self._set(PowerState.ON, "emulated resume")

    async def _real_suspend(self) -> None:
        gap_before = _sleep_gap_s()
        argv = POWEROFF_ARGV if self._config.sleep is SleepMode.OFF else SUSPEND_ARGV
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
        except OSError as exc:
            await self._set(PowerState.ON, f"suspend failed: {exc}")
            return
        if proc.returncode != 0:
            await self._set(PowerState.ON, f"suspend failed: {err.decode(errors='replace').strip()}")
            return
        await self._set(PowerState.SUSPENDED, " ".join(argv))
        if argv is POWEROFF_ARGV:
            return  # the machine goes down; the agent that answers after power-on is a new process
        while _sleep_gap_s() - gap_before < SLEEP_JUMP_S:
            await asyncio.sleep(RESUME_POLL_S)
        await self._set(PowerState.ON, f"resumed after {_sleep_gap_s() - gap_before:.1f} s asleep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
