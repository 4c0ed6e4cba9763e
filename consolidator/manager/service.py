"""The manager service: the control loop over a real cluster, for as long as the operator runs it.

Every period: read every host (VM list and stats) through its engine, record the samples, pick up
VMs created or destroyed outside the manager, mark hosts that stopped answering UNKNOWN (FAILED to
the planner, so never a target), plan, pass the plan through the operator rules
(``control.rules.gate``), price it with the simulator's models (``predict``), and in ``auto`` mode
hand it to the VM Controller. In ``recommend`` mode nothing is applied: the plan is recorded and shown.

Restart-safe: the run's clock (``manager_t0_wall_s``), the mode, and every event live in the run
store; on start the manager marks each agent's event log, then reads the cluster, adopts the
migrations in flight (it waits for their end instead of starting them again), takes the hosts' power
states from the agents (or, for a host that does not answer, from the store: asleep stays asleep,
anything else is UNKNOWN), and the holds, move counts and failures from the stored events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consolidator.control.loop import ControlLoop, build_loop
from consolidator.control.rules import History, gate
from consolidator.domain.actions import Migrate, Plan
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import PowerState
from consolidator.manager.cluster import RemoteCluster, Waker
from consolidator.manager.config import ClusterConfig, power_config
from consolidator.manager.discovery import Inventory, discover
from consolidator.manager.engine import Engine, make_engine
from consolidator.manager.events import EventForwarder
from consolidator.manager.journal import Journal
from consolidator.manager.mode import ManagerMode
from consolidator.manager.poller import PolledStats, StatsPoller
from consolidator.manager.power import PowerSampler, config_meters
from consolidator.manager.predict import predict
from consolidator.manager.setup import adopt_moves, host_view, migration_params, options_of, rule_book, waker_for
from consolidator.manager.telemetry import Refusal, Telemetry, describe
from consolidator.policies.registry import make_policy
from consolidator.power.meters import Meter
from consolidator.power.monitor import PowerMonitor
from consolidator.storage import RunStore, open_store

log = logging.getLogger(__name__)

T0_KEY, MODE_KEY = "manager_t0_wall_s", "manager_mode"
DRAIN_POLL_S = 0.2


@dataclass
class Hooks:
    """What a caller adds to the service (the lab: its load schedule, recorder and model meters)."""

    before_tick: Callable[[float], Awaitable[None]] | None = None  # run time >= 0, before the poll
    after_tick: Callable[[float, dict[str, PolledStats], Plan], None] | None = None
    on_warm: Callable[[float, dict[str, PolledStats]], None] | None = None  # each period before planning
    meters: Mapping[str, Meter] | None = None  # instead of cluster.toml's
    warmup_s: float = 0.0  # a fresh run starts its clock this far ahead: warm-up at negative times
    waker: Waker | None = None  # instead of cluster.toml's wake methods
    power_timeout_s: float | None = None  # the meters' timeout (default: 0.8 of the period)


class ManagerService:
    """One manager. ``start()``, then ``run(stop)`` until ``stop`` is set, then ``shutdown()``."""

    def __init__(self, cfg: ClusterConfig, engines: dict[str, Engine] | None = None,
                 clock: Callable[[], float] = time.time, hooks: Hooks | None = None) -> None:
        """``engines``: one per host (default: built from cfg by their drivers); ``hooks``: what an
        experiment (the lab) adds around each period, its meters and a warm-up before run time 0."""
        self.cfg = cfg
        self.specs = {h.name: h for h in cfg.host_specs()}
        self.engines = engines if engines is not None else {n: make_engine(n, h, cfg.leash())
                                                           for n, h in cfg.hosts.items()}
        self.clock = clock
        self.telemetry = Telemetry(mode=cfg.mode)
        self.book = rule_book(cfg)
        self.history = History()
        self.params = migration_params(cfg)
        self.unknown: set[str] = set()
        self.misses: dict[str, int] = dict.fromkeys(self.engines, 0)
        self.observers: list[Callable[[Event], None]] = []
        self.planning = True
        self.latest_polled: dict[str, PolledStats] = {}
        self.warmup_periods = cfg.window_periods
        self.t0_wall_s = 0.0
        self._store: RunStore | None = None
        self._loop: ControlLoop | None = None
        self._last_plan: tuple[Any, ...] = ()
        self.journal = Journal(cfg.journal_path())
        self.hooks = hooks or Hooks()
        self.step_s: list[float] = []  # wall time of each period's work

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._store = store = open_store(self.cfg.run_store)
        resume = store.resume_state()
        self.t0_wall_s = float(resume.meta.get(T0_KEY, self.clock() + self.hooks.warmup_s))
        store.set_meta(T0_KEY, repr(self.t0_wall_s))
        if resume.meta.get(MODE_KEY) in set(ManagerMode):  # the mode an operator last chose
            self.telemetry.set_mode(ManagerMode.parse(resume.meta[MODE_KEY]), self.now(), "restart")
        self.waker = self.hooks.waker or waker_for(self.cfg, self.engines, self.telemetry.metrics)
        self.cluster = RemoteCluster(self.engines, self._deliver, self.t0_wall_s, self.waker, options_of(self.cfg),
                                     self.book.never_postcopy)
        self.poller = StatsPoller(self.engines, self.cfg.overhead_per_vm)
        self.forwarder = EventForwarder(self.engines, self.t0_wall_s, self._deliver)
        meters = self.hooks.meters or config_meters(power_config(self.cfg, "cluster.toml"),
                                                    list(self.specs.values()), lambda: self.latest_polled)
        self.power = PowerSampler(PowerMonitor(meters, self.now, store), self.hooks.power_timeout_s)
        self.power.fit_period(self.cfg.period_s)
        await self.forwarder.mark()  # before reading the cluster: no event between the two is lost
        inv, polled = await asyncio.gather(discover(self.engines), self.poller.poll(self.now()))
        states = {h: self._start_state(h, polled, resume.power_states.get(h)) for h in self.engines}
        events = store.events()
        self._build(inv, states)
        assert self._loop is not None
        last_end = {e.vm: e.t_s for e in events if isinstance(e, MigrationFinished)}
        for name, v in self._loop.controller.vm_index.items():
            self._loop.controller.last_end[v] = last_end.get(name, float("-inf"))
        self.history.replay(events)
        adopted = adopt_moves(self._loop.controller, self.cluster, inv, self.cfg.method, self.now())
        for vm in adopted:  # the move counts against the VM's moves per hour and the migration rate
            self.history.note_started(vm, self.now())
        await self._remove_orphans(inv)
        self.forwarder.follow()
        self.journal.write("start", t_s=self.now(), mode=self.telemetry.mode, hosts=states_json(states),
                           vms=inv.placement, adopted=adopted, resumed=resume.last_t_s is not None)
        log.info("manager started: %d hosts, %d VMs, mode %s, %d migration(s) in flight adopted",
                 len(self.engines), len(inv.placement), self.telemetry.mode, len(adopted))

    def _start_state(self, host: str, polled: dict[str, PolledStats], stored: PowerState | None) -> PowerState:
        if host in polled:
            return polled[host].raw.power_state
        if stored in (PowerState.SUSPENDED, PowerState.SUSPENDING):
            return PowerState.SUSPENDED  # asleep hosts do not answer
        self.unknown.add(host)
        return PowerState.FAILED

    async def run(self, stop: asyncio.Event, until_s: float | None = None) -> int:
        """Tick every period until ``stop`` is set (or run time ``until_s``); returns the periods run."""
        period, periods = self.cfg.period_s, 0
        start = time.monotonic()
        while not stop.is_set() and (until_s is None or self.now() < until_s):
            await self.step()
            periods += 1
            wait = start + periods * period - time.monotonic()
            if wait < 0:
                log.warning("period %d overran by %.2f s", periods, -wait)
                start -= wait  # late periods are not made up
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, wait))
            except TimeoutError:
                pass
        return periods

    async def shutdown(self) -> None:
        """Stop planning, let running migrations finish (``limits.drain_timeout_s``), record, close."""
        self.planning = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.limits.drain_timeout_s
        while self._moves_running() and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        left = sorted(self.cluster.in_flight)
        if left:
            log.warning("stopping with %d migration(s) still running: %s", len(left), ", ".join(left))
        await self.forwarder.stop()
        await self.power.stop()
        try:
            await asyncio.wait_for(self.cluster.drain(), 10.0)
        except TimeoutError:
            log.warning("port calls still running at shutdown")
        assert self._store is not None
        self._store.set_meta("manager_stopped_wall_s", repr(self.clock()))
        self._store.close()
        self.journal.write("stop", t_s=self.now(), in_flight=left)
        for engine in self.engines.values():
            await engine.close()
        log.info("manager stopped (%d migration(s) left running)", len(left))

    def _moves_running(self) -> bool:
        return bool(self.cluster.in_flight) or bool(self._loop and self._loop.controller.moves)

    def now(self) -> float:
        return self.clock() - self.t0_wall_s

    # -- one period -------------------------------------------------------------------------------
    async def step(self) -> Plan | None:
        now = self.now()
        if self.hooks.before_tick is not None and now >= 0:
            await self.hooks.before_tick(now)
        inv, polled = await asyncio.gather(discover(self.engines), self.poller.poll(now))
        self.latest_polled = polled
        self._track_answers(polled, now)
        if self._needs_rebuild(inv):
            self._rebuild(inv)
        loop = self._loop
        assert loop is not None and self._store is not None
        for stats in polled.values():
            loop.monitor.record_host(stats.host)
            for vm in stats.vms:
                if vm.vm in loop.monitor.vm_index:
                    loop.monitor.record_vm(vm)
        plan = None
        if now < 0 or self.warmup_periods > 0 or not self.planning:
            self.warmup_periods -= 1  # the Load Monitor's window fills with measurements first
            loop.monitor.close_period(now)
            if self.hooks.on_warm is not None:
                self.hooks.on_warm(now, polled)
        else:
            plan = self._plan(loop, now)
            self.step_s.append(self.now() - now)
            if self.hooks.after_tick is not None:
                self.hooks.after_tick(now, polled, plan)
        self._show(loop, polled, now)
        self.power.kick()  # runs while the period's remainder is slept; never delays the tick
        self._store.flush()
        return plan

    def _plan(self, loop: ControlLoop, now: float) -> Plan:
        started = time.perf_counter()
        proposed = loop.propose(now)  # every period, or on the policy's interval grid
        if proposed is None:
            return Plan()
        snap, raw = proposed
        moving = {loop.controller.vms[v].name: (loop.controller.hosts[m.src].name, loop.controller.hosts[m.dst].name)
                  for v, m in loop.controller.moves.items()}
        gated = gate(raw, snap, self.book, self.history, moving)
        auto = self.telemetry.mode is ManagerMode.AUTO
        if auto:
            for action in loop.controller.apply(gated.plan, now):
                if isinstance(action, Migrate):
                    self.history.note_started(action.vm, now)
        self.telemetry.metrics.plan_latency.observe(time.perf_counter() - started)
        for r in gated.refusals:
            self.telemetry.add_refusal(Refusal(now, r.rule, describe(r.action), r.reason))
        key = tuple(dataclasses.replace(a, reason="") for a in gated.plan.actions)  # the same plan, other figures
        if key != self._last_plan:  # an unchanged plan (asked again every period) is recorded once
            self._last_plan = key
            prediction = predict(gated.plan, snap, self.specs, self.params)
            self.telemetry.add_plan(now, gated.plan, prediction, applied=auto)
            if gated.plan.actions:
                self.journal.write("plan", t_s=now, mode=self.telemetry.mode, applied=auto,
                                   actions=[describe(a) for a in gated.plan.actions], prediction=prediction,
                                   refusals=[{"rule": r.rule, "reason": r.reason} for r in gated.refusals])
        else:
            self.telemetry.plans += 1
        return gated.plan

    def _show(self, loop: ControlLoop, polled: dict[str, PolledStats], now: float) -> None:
        last = self.power.last
        metered = {h: w for h, w in last.watts.items() if self.power.monitor.meters[h].kind != "model"} if last else {}
        hosts, vms, watts, all_on = host_view(loop, polled, self.specs, self.unknown, self.book, metered)
        self.telemetry.set_cluster(hosts, vms)
        self.telemetry.add_power(now, watts, self.cfg.period_s, all_on)

    # -- hosts that stop or start answering ------------------------------------------------------
    def _track_answers(self, polled: dict[str, PolledStats], now: float) -> None:
        controller = self._loop.controller if self._loop else None
        for host in self.engines:
            if host in polled:
                self.misses[host] = 0
                raw = polled[host].raw
                if host in self.unknown:
                    self.unknown.discard(host)
                    log.info("host %s answers again (%s)", host, raw.power_state.value)
                    self._deliver(HostPowerChanged(now, host, raw.power_state, "answering again"))
                elif controller is not None and not raw.emulated and raw.power_state is PowerState.ON:
                    # a real host that powered off comes back with a new agent, which reports no
                    # resume event: its answering "on" is the news
                    known = controller.power_state(host)
                    if known in (PowerState.SUSPENDED, PowerState.RESUMING):
                        log.info("host %s answers: on (was %s)", host, known.value)
                        self._deliver(HostPowerChanged(now, host, PowerState.ON, "answers: on"))
                continue
            self.misses[host] += 1
            self.forwarder.recovery.on_unreachable(host, "no answer to the stats poll")  # a dead source?
            if controller is None or host in self.unknown or self.misses[host] < self.cfg.limits.unknown_after_misses:
                continue
            state = controller.power_state(host)
            if state in (PowerState.ON, PowerState.SUSPENDING):
                self.unknown.add(host)
                log.warning("host %s is UNKNOWN: no answer for %d periods", host, self.misses[host])
                self._deliver(HostPowerChanged(now, host, PowerState.FAILED, "unknown: not answering"))

    # -- the VM set ---------------------------------------------------------------------------------
    def _needs_rebuild(self, inv: Inventory) -> bool:
        assert self._loop is not None
        c = self._loop.controller
        if c.moves or self.cluster.in_flight:
            return False  # only between moves: the controller's books are then simple to carry over
        known = {vm.name: c.hosts[int(c.vm_at[i])].name for i, vm in enumerate(c.vms) if not c.lost[i]}
        seen = self._merged_placement(inv, known)
        return seen != known

    def _merged_placement(self, inv: Inventory, known: dict[str, str]) -> dict[str, str]:
        """Discovered placement; VMs of hosts that did not answer stay where they were."""
        merged = {vm: host for vm, host in known.items() if host not in inv.answered}
        merged.update(inv.placement)
        return merged

    def _rebuild(self, inv: Inventory) -> None:
        assert self._loop is not None
        old = self._loop
        c = old.controller
        known = {vm.name: c.hosts[int(c.vm_at[i])].name for i, vm in enumerate(c.vms)}
        placement = self._merged_placement(inv, known)
        states = {h.name: c.power_state(i) for i, h in enumerate(c.hosts)}
        added, gone = sorted(set(placement) - set(known)), sorted(set(known) - set(placement))
        specs = {v.name: v for v in c.vms} | inv.specs
        self._build(Inventory(inv.answered, placement, {n: specs[n] for n in placement}), states)
        assert self._loop is not None
        new = self._loop
        new.monitor.carry_over(old.monitor)
        new.next_plan_s = old.next_plan_s  # an interval planner keeps its grid
        for name, v in new.controller.vm_index.items():
            j = c.vm_index.get(name)
            if j is not None and placement[name] == known[name]:
                new.controller.last_end[v] = c.last_end[j]
        log.info("VMs changed: added %s, gone %s", added or "-", gone or "-")
        self.journal.write("vms", t_s=self.now(), added=added, gone=gone)

    def _build(self, inv: Inventory, states: dict[str, PowerState]) -> None:
        names = inv.vm_names()
        policy = make_policy(self.cfg.policy.name, **self.cfg.policy.args)
        assert self._store is not None
        self._loop = build_loop(list(self.specs.values()), [inv.specs[n] for n in names], inv.placement, policy,
                                self.cluster, self._store, self.cfg.method, states,
                                window_periods=self.cfg.window_periods)

    async def _remove_orphans(self, inv: Inventory) -> None:
        """Incoming VMs nobody sends (a move cut short): removed when the VM's source answered."""
        for vm, host in inv.orphans.items():
            if vm in inv.placement or set(self.engines) == inv.answered:
                log.warning("removing the incoming %s left on %s by a move that did not happen", vm, host)
                try:
                    await self.engines[host].destroy_vm(vm)
                except Exception as exc:  # noqa: BLE001 - a refusal is logged; the next move retries
                    log.warning("could not remove incoming %s on %s: %s", vm, host, exc)

    # -- events and controls ------------------------------------------------------------------------
    def _deliver(self, event: Event) -> None:
        self.cluster.on_event(event)
        loop = self._loop
        if loop is not None and self._known(loop, event):
            loop.on_event(event)
        elif self._store is not None:
            self._store.write_event(event)
        self.history.on_event(event)
        self.telemetry.on_event(event)
        for observer in self.observers:
            observer(event)

    @staticmethod
    def _known(loop: ControlLoop, event: Event) -> bool:
        if isinstance(event, HostPowerChanged):
            return event.host in loop.controller.host_index
        if isinstance(event, MigrationStarted | MigrationFinished):
            return event.vm in loop.controller.vm_index and {event.src, event.dst} <= set(loop.controller.host_index)
        return True

    def set_mode(self, mode: ManagerMode, by: str) -> None:
        """Switch between ``recommend`` and ``auto`` (API); recorded in the run store and journal."""
        old = self.telemetry.mode
        self.telemetry.set_mode(mode, self.now(), by)
        if self._store is not None:
            self._store.set_meta(MODE_KEY, mode)
        self._last_plan = ()
        self.journal.write("mode", t_s=self.now(), old=old, new=mode, by=by)
        log.info("mode %s -> %s (%s)", old, mode, by)

    @property
    def loop(self) -> ControlLoop:
        assert self._loop is not None
        return self._loop


def states_json(states: dict[str, PowerState]) -> dict[str, str]:
    return {h: s.value for h, s in states.items()}

