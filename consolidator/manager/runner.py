"""The live runner: the control loop on the wall clock, over host agents.

Like SimPy's RealtimeEnvironment, it is only another way of calling the same loop: every period it
polls the agents' stats into the Load Monitor and calls ``loop.tick(now)``; agents' events reach
``loop.on_event`` as they arrive. ``now`` is seconds since the session started.

With ``power_meters`` (node -> Meter), the session also runs the Power Monitor: one sample per
period, started after the poll and tick as a task of its own (``manager.power.PowerSampler``), timed
by the session's clock (run time, like every sample and event), written to the run store when the
sink is one (``write_power_samples``). A meter that fails or times out is reported (a row with no
watts and the error) and never delays a tick.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType

from consolidator.control.loop import ControlLoop, build_loop
from consolidator.control.ports import SampleSink
from consolidator.domain.actions import Plan
from consolidator.domain.events import Event
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState, VmSpec
from consolidator.manager.client import AgentEndpoint
from consolidator.manager.cluster import RemoteCluster, Waker
from consolidator.manager.engine import AgentEngine, Engine
from consolidator.manager.events import EventForwarder
from consolidator.manager.poller import PolledStats, StatsPoller
from consolidator.manager.power import PowerSampler
from consolidator.policies.base import Policy
from consolidator.power.meters import Meter
from consolidator.power.monitor import PowerMonitor, PowerSink
from consolidator.protocol.migration import DEFAULT_OPTIONS, MigrationOptions

log = logging.getLogger(__name__)

BeforeTick = Callable[[float], Awaitable[None]]
AfterTick = Callable[[float, dict[str, PolledStats], Plan], None]


class LiveSession:
    """One live run: agent clients, RemoteCluster, control loop, event forwarder; use ``async with``."""

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        vms: Sequence[VmSpec],
        placement: Mapping[str, str],
        policy: Policy,
        endpoints: Mapping[str, AgentEndpoint],
        method: MigrationMethod,
        sink: SampleSink,
        *,
        power_states: Mapping[str, PowerState] | None = None,
        options: MigrationOptions = DEFAULT_OPTIONS,
        waker: Waker | None = None,
        window_periods: int = 10,
        overhead_per_vm: float | None = None,
        warmup_s: float = 0.0,
        client_factory: Callable[[AgentEndpoint], Engine] = AgentEngine,
        power_meters: Mapping[str, Meter] | None = None,
        power_timeout_s: float | None = None,
        power_sink: PowerSink | None = None,
    ) -> None:
        """``waker``: how hosts are woken (default: an emulated host's agent, ``AgentWaker``); the
        power area's ``PowerController`` fits. ``power_meters``: run the Power Monitor over these
        (node -> Meter), its timeout ``power_timeout_s`` (default 0.8 of the period), its readings
        to ``power_sink`` (default: ``sink`` if it stores power samples, as a RunStore does)."""
        self._args = (hosts, vms, placement, policy, method, sink, window_periods)
        self.endpoints = dict(endpoints)
        self.power_states = dict(power_states or {})
        self.options, self.waker, self.overhead_per_vm = options, waker, overhead_per_vm
        self.observers: list[Callable[[Event], None]] = []
        self.clients: dict[str, Engine] = {}
        self.t0_wall_s = 0.0
        self.warmup_s = warmup_s
        self._client_factory = client_factory
        self.step_s: list[float] = []  # wall time of each poll-and-tick, for the run's record
        self.latest_polled: dict[str, PolledStats] = {}  # the last poll's answers (model meters read them)
        self.power: PowerSampler | None = None
        if power_meters:
            if power_sink is None and hasattr(sink, "write_power_samples"):
                power_sink = sink  # type: ignore[assignment]
            self.power = PowerSampler(PowerMonitor(power_meters, self.now, power_sink), power_timeout_s)

    async def __aenter__(self) -> LiveSession:
        hosts, vms, placement, policy, method, sink, window = self._args
        self.t0_wall_s = time.time() + self.warmup_s  # warm-up periods run at negative times
        self.clients = {name: self._client_factory(ep) for name, ep in self.endpoints.items()}
        self.cluster = RemoteCluster(self.clients, self._deliver, self.t0_wall_s, self.waker, self.options)
        self.loop: ControlLoop = build_loop(hosts, vms, placement, policy, self.cluster, sink, method,
                                           self.power_states, window_periods=window)
        self.poller = StatsPoller(self.clients, self.overhead_per_vm)
        self.forwarder = EventForwarder(self.clients, self.t0_wall_s, self._deliver)
        await self.forwarder.start()
        return self

    def _deliver(self, event: Event) -> None:
        self.cluster.on_event(event)
        self.loop.on_event(event)
        for observer in self.observers:
            observer(event)

    def now(self) -> float:
        return time.time() - self.t0_wall_s

    async def step(self) -> tuple[float, dict[str, PolledStats], Plan]:
        """One period: poll every agent, record the samples, plan and act."""
        now = self.now()
        polled = await self.poller.poll(now)
        self.latest_polled = polled
        for stats in polled.values():
            self._record(stats)
        plan = self.loop.tick(now)
        self.step_s.append(self.now() - now)
        if self.power is not None:
            self.power.kick()  # runs while this period's remainder is slept; never awaited here
        return now, polled, plan

    async def warm_up(self, period_s: float = 1.0,
                      on_poll: Callable[[float, dict[str, PolledStats]], None] | None = None) -> int:
        """Until run time 0: poll and record every period, without planning, so that the Load
        Monitor's averaging window holds measurements (not zeros) when the first plan is made."""
        periods = 0
        if self.power is not None:
            self.power.fit_period(period_s)
        while self.now() < -period_s / 2:
            now = self.now()
            polled = await self.poller.poll(now)
            self.latest_polled = polled
            for stats in polled.values():
                self._record(stats)
            if self.power is not None:
                self.power.kick()
            if on_poll is not None:
                on_poll(now, polled)
            self.loop.monitor.close_period(now)
            periods += 1
            await asyncio.sleep(max(0.0, min(period_s, -self.now())))
        await asyncio.sleep(max(0.0, -self.now()))
        return periods

    def _record(self, stats: PolledStats) -> None:
        self.loop.monitor.record_host(stats.host)
        for vm in stats.vms:
            if vm.vm in self.loop.monitor.vm_index:
                self.loop.monitor.record_vm(vm)

    async def run(self, duration_s: float, period_s: float = 1.0,
                  before_tick: BeforeTick | None = None, after_tick: AfterTick | None = None) -> int:
        """Tick every ``period_s`` until ``duration_s``; returns the number of ticks. Late ticks are
        not made up: a period that overran is logged and the next one starts on the next boundary."""
        if self.power is not None:
            self.power.fit_period(period_s)
        start = time.monotonic() - self.now()
        ticks, boundary = 0, math.floor(self.now() / period_s)
        while self.now() < duration_s:
            if before_tick is not None:
                await before_tick(self.now())
            now, polled, plan = await self.step()
            if after_tick is not None:
                after_tick(now, polled, plan)
            ticks += 1
            elapsed = time.monotonic() - start
            next_boundary = max(boundary + 1, math.ceil(elapsed / period_s))
            if next_boundary > boundary + 1:
                log.warning("tick at %.1f s overran its period by %.2f s", now,
                            elapsed - (boundary + 1) * period_s)
            boundary = next_boundary
            await asyncio.sleep(max(0.0, start + boundary * period_s - time.monotonic()))
        return ticks

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.forwarder.stop()
        if self.power is not None:
            await self.power.stop()
        await self.cluster.drain()
        for client in self.clients.values():
            await client.close()
