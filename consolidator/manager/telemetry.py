"""What the manager shows: the latest cluster view, recent history, and the Prometheus metrics.

The service writes here once a period and on every event; the API (api.py) and the dashboard only
read. History is bounded (``history_s`` of power samples, ``keep`` migrations, plans and refusals).
Times are run time (seconds since the manager's run started, stable across restarts).
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from consolidator.domain.actions import Action, Migrate, Plan
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.manager.metrics import Metrics
from consolidator.manager.mode import ManagerMode


@dataclass(frozen=True, slots=True)
class HostStatus:
    name: str
    state: str  # a PowerState value, or "unknown" (the host's engine does not answer)
    watts: float | None
    load: float
    vms: tuple[str, ...]
    maintenance: bool = False


@dataclass(frozen=True, slots=True)
class VmStatus:
    name: str
    host: str
    load: float
    rules: tuple[str, ...] = ()  # pin, exclude, never_postcopy


@dataclass(slots=True)
class MigrationRecord:
    vm: str
    src: str
    dst: str
    method: MigrationMethod
    start_s: float
    end_s: float | None = None
    outcome: MigrationOutcome | None = None  # None while running
    downtime_s: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    t_s: float
    rule: str
    action: dict[str, Any]  # ``describe(action)``
    reason: str


def describe(action: Action) -> dict[str, Any]:
    """An action as JSON: its kind and fields (``method`` as its value)."""
    data = {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(action).items()}
    return {"kind": type(action).__name__.lower(), **data}


@dataclass
class Telemetry:
    """The manager's observable state. ``metrics`` are updated with it."""

    mode: ManagerMode = ManagerMode.RECOMMEND
    history_s: float = 900.0
    keep: int = 200
    metrics: Metrics = field(default_factory=Metrics)
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    vms: dict[str, VmStatus] = field(default_factory=dict)
    power: collections.deque[tuple[float, dict[str, float | None]]] = field(
        default_factory=collections.deque)
    migrations: list[MigrationRecord] = field(default_factory=list)
    recommendations: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    refusals: collections.deque[Refusal] = field(default_factory=collections.deque)
    refusal_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    mode_changes: list[dict[str, Any]] = field(default_factory=list)
    energy_ws: float = 0.0
    all_on_ws: float = 0.0
    plans: int = 0
    now_s: float = 0.0  # run time of the latest period

    def __post_init__(self) -> None:
        self.metrics.set_mode(self.mode)

    # -- writers (the service) --------------------------------------------------------------------
    def set_cluster(self, hosts: list[HostStatus], vms: list[VmStatus]) -> None:
        for gone in set(self.vms) - {v.name for v in vms}:
            self.metrics.forget_vm(gone)
        self.hosts = {h.name: h for h in hosts}
        self.vms = {v.name: v for v in vms}
        for h in hosts:
            self.metrics.set_host(h.name, h.state, h.watts, h.load)
        for v in vms:
            self.metrics.set_vm(v.name, v.host, v.load)

    def add_power(self, t_s: float, watts: dict[str, float | None], period_s: float,
                  all_on_watts: float) -> None:
        """One period's power readings and the estimate of what every host kept on would draw."""
        self.now_s = t_s
        self.power.append((t_s, dict(watts)))
        while self.power and self.power[0][0] < t_s - self.history_s:
            self.power.popleft()
        drawn = sum(w for w in watts.values() if w is not None) * period_s
        all_on = max(all_on_watts * period_s, drawn)
        self.energy_ws += drawn
        self.all_on_ws += all_on
        self.metrics.energy.inc(drawn)
        self.metrics.energy_all_on.inc(all_on)
        self.metrics.energy_saved.inc(all_on - drawn)

    def on_event(self, event: Event) -> None:
        if isinstance(event, MigrationStarted):
            self._running(event.vm, event.src, event.dst, event.method, event.t_s)
        elif isinstance(event, MigrationFinished):
            rec = self._running(event.vm, event.src, event.dst, event.method, event.start_s)
            rec.end_s, rec.outcome, rec.detail = event.t_s, event.outcome, event.detail
            if event.outcome is MigrationOutcome.COMPLETED:
                rec.downtime_s = event.downtime_s
                self.metrics.downtime.labels(event.method.value).observe(event.downtime_s)
            self.metrics.migrations.labels(event.method.value, event.outcome.value).inc()
            self.metrics.duration.labels(event.method.value).observe(max(0.0, event.t_s - event.start_s))
        elif isinstance(event, HostPowerChanged):
            pass  # the next period's host view shows it
        self.metrics.running.set(self.migrations_running())

    def _running(self, vm: str, src: str, dst: str, method: MigrationMethod, start_s: float) -> MigrationRecord:
        for rec in reversed(self.migrations):
            if rec.vm == vm and rec.outcome is None:
                return rec
        rec = MigrationRecord(vm, src, dst, method, start_s)
        self.migrations.append(rec)
        del self.migrations[:-self.keep]
        return rec

    def add_plan(self, t_s: float, plan: Plan, prediction: dict[str, Any], applied: bool) -> None:
        self.plans += 1
        self.metrics.plans.labels(self.mode).inc()
        if plan.actions:
            self.recommendations.append({"t_s": t_s, "mode": self.mode, "applied": applied,
                                         "actions": [describe(a) for a in plan.actions],
                                         "prediction": prediction})
            while len(self.recommendations) > self.keep:
                self.recommendations.popleft()

    def add_refusal(self, refusal: Refusal) -> None:
        self.refusal_counts[refusal.rule] += 1
        self.metrics.refusals.labels(refusal.rule).inc()
        self.refusals.append(refusal)
        while len(self.refusals) > self.keep:
            self.refusals.popleft()

    def set_mode(self, mode: ManagerMode, t_s: float, by: str) -> None:
        if mode is not self.mode:
            self.mode_changes.append({"t_s": t_s, "from": self.mode, "to": mode, "by": by})
            self.metrics.mode_changes.inc()
        self.mode = mode
        self.metrics.set_mode(mode)

    # -- readers (the API) ------------------------------------------------------------------------
    def migrations_running(self) -> int:
        return sum(1 for r in self.migrations if r.outcome is None)

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "hosts": [{"name": h.name, "state": h.state, "watts": h.watts, "load": h.load,
                       "vms": list(h.vms), "maintenance": h.maintenance} for h in self.hosts.values()],
            "vms": [{"name": v.name, "host": v.host, "load": v.load, "rules": list(v.rules)}
                    for v in self.vms.values()],
            "migrations_running": self.migrations_running(),
            "plans": self.plans,
            "t_s": self.now_s,
        }

    def power_series(self, seconds: float) -> dict[str, Any]:
        rows = [(t, w) for t, w in self.power if not self.power or t >= self.power[-1][0] - seconds]
        hosts = sorted({h for _, w in rows for h in w})
        return {"t_s": [t for t, _ in rows],
                "hosts": {h: [w.get(h) for _, w in rows] for h in hosts},
                "total_watts": [sum(x for x in w.values() if x is not None) for _, w in rows]}

    def migration_timeline(self, limit: int) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.migrations[-limit:]]

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Plans not applied (recommend mode), newest last."""
        return [r for r in self.recommendations if not r["applied"]][-limit:]

    def refusal_view(self, limit: int) -> dict[str, Any]:
        return {"counts": dict(self.refusal_counts),
                "recent": [dataclasses.asdict(r) for r in list(self.refusals)[-limit:]]}

    def energy(self) -> dict[str, Any]:
        saved = self.all_on_ws - self.energy_ws
        return {"energy_wh": self.energy_ws / 3600, "all_on_wh": self.all_on_ws / 3600,
                "saved_wh": saved / 3600, "saved_share": saved / self.all_on_ws if self.all_on_ws else 0.0}


def moves_of(plan: Plan) -> list[Migrate]:
    return [a for a in plan.actions if isinstance(a, Migrate)]
