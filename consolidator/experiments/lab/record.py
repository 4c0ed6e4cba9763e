"""Records a live lab run in the simulator's run-folder format (docs/run-format.md).

Per tick: each host's power state, CPU (demand = its VMs' demand + measured overhead; served =
measured), watts and VM count; each VM's host, demand (what it ran plus the work waiting in its
guest's queue, as the simulator counts it), measured load and whether it is migrating. The run's
summary is the simulator's (``models.summary.RunMeter`` over these rows). Watts: the Power Monitor's
reading of the host in that tick, through a ``model`` meter per host (``LabHostMeter``: the power model
of the simulator on the measured load, plus the simulator's migration extras — per endpoint during a
move, dirty-page tracking at a precopy source), because lab hosts share one machine and have no meter
of their own. A tick without a good reading
(a meter that failed or was late) gets the same model computed here, and is counted.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.samples import PowerReport
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.experiments.lab.backlog import GuestQueues
from consolidator.experiments.lab.scale import load_at
from consolidator.manager.poller import PolledStats
from consolidator.models.power import host_watts
from consolidator.models.summary import IntervalSample, RunIdentity, RunMeter, RunSummary
from consolidator.power.meters import ModelMeter
from consolidator.sim.engine import RunRecord, RunResult
from consolidator.sim.scenario import Scenario


@dataclass
class _Rows:
    t_s: list[float] = field(default_factory=list)
    host: list[list[Any]] = field(default_factory=list)  # per tick: [state, demand, served, watts, n_vms]
    vm: list[list[Any]] = field(default_factory=list)  # per tick: [host index, demand, served, avg, moving]
    vm_measured: list[list[float]] = field(default_factory=list)  # per tick: each VM's measured load
    vm_load: list[list[float]] = field(default_factory=list)  # per tick: each VM's scheduled (workload) load


class LabRecorder:
    """Collects ticks and events of one live run; ``result()`` gives the simulator's RunResult."""

    def __init__(self, scenario: Scenario, method: MigrationMethod, power_states: dict[str, PowerState]) -> None:
        self.scenario = scenario
        self.method = method
        self.host_index = {h.name: i for i, h in enumerate(scenario.hosts)}
        self.vm_index = {v.name: i for i, v in enumerate(scenario.vms)}
        self.state = [power_states.get(h.name, PowerState.ON) for h in scenario.hosts]
        self.moving: dict[str, MigrationStarted] = {}
        self.migrations: list[MigrationFinished] = []
        self.power_events: list[HostPowerChanged] = []
        self.rows = _Rows()
        self.warm_sum = np.zeros(len(scenario.vms))  # measured loads during the warm-up
        self.warm_n = 0
        # the migration extras now, replaced (never mutated) on each event: meters read it in threads
        self.extra_now = np.zeros(len(scenario.hosts))
        self.power_reports: list[tuple[float, dict[str, float | None]]] = []  # (t_s, watts per host)
        self.guests = GuestQueues(scenario)  # the guests' own work queues, beside the simulator's backlog

    def on_event(self, event: Event) -> None:
        if isinstance(event, HostPowerChanged):
            self.state[self.host_index[event.host]] = event.state
            self.power_events.append(event)
        elif isinstance(event, MigrationStarted):
            self.moving[event.vm] = event
            self.extra_now = self._extra_watts()
        elif isinstance(event, MigrationFinished):
            self.moving.pop(event.vm, None)
            self.migrations.append(event)
            self.extra_now = self._extra_watts()

    def on_power(self, report: PowerReport) -> None:
        """A Power Monitor report (the session's ``power.observers``); hosts.csv's watts come from it."""
        self.power_reports.append((report.t_s, dict(report.watts)))

    def _extra_watts(self) -> np.ndarray:
        extra = np.zeros(len(self.scenario.hosts))
        for move in self.moving.values():
            src, dst = self.host_index[move.src], self.host_index[move.dst]
            extra[src] += self.scenario.hosts[src].power.migration_watts
            extra[dst] += self.scenario.hosts[dst].power.migration_watts
            if move.method is MigrationMethod.PRECOPY:
                extra[src] += self.scenario.hosts[src].power.dirty_tracking_watts
        return extra

    def tick(self, t_s: float, polled: dict[str, PolledStats], vm_host: np.ndarray, vm_avg: np.ndarray) -> None:
        """One row per host and VM. ``vm_host``: the controller's host index of each VM."""
        sc = self.scenario
        scheduled = np.array([load_at(steps, t_s) for steps in sc.schedules])
        measured = np.zeros(len(sc.vms))
        running = np.full(len(sc.vms), -1)
        host_load = np.zeros(len(sc.hosts))
        for name, stats in polled.items():
            h = self.host_index[name]
            host_load[h] = stats.host.cpu_load
            for vm in stats.vms:
                j = self.vm_index.get(vm.vm)
                if j is not None:
                    measured[j] += vm.cpu_load
                    running[j] = h
        running = np.where(running >= 0, running, vm_host)
        self.guests.tick(t_s, polled)
        demand = self._wanted(scheduled, measured, np.array(self.guests.backlog_s[-1], dtype=float))
        vm_sum = np.bincount(running, weights=measured, minlength=len(sc.hosts))
        demand_h = np.bincount(running, weights=demand, minlength=len(sc.hosts)) + np.maximum(
            0.0, host_load - vm_sum)
        extra = self._extra_watts()
        host_rows = []
        for h, spec in enumerate(sc.hosts):
            state = self.state[h]
            served = host_load[h] if state is PowerState.ON else 0.0
            watts = host_watts(spec.power, state, served, spec.cores) + extra[h]
            host_rows.append([state.code, demand_h[h], served, watts, int(np.count_nonzero(running == h))])
        self.rows.t_s.append(t_s)
        self.rows.host.append(host_rows)
        self.rows.vm_measured.append([float(x) for x in measured])
        self.rows.vm_load.append([float(x) for x in scheduled])
        # served = the load measured in the guest, unclipped (models.summary counts unserved CPU per VM
        # over the run: a measured load scatters around the scheduled one from period to period)
        self.rows.vm.append([[int(running[j]), demand[j], measured[j], float(vm_avg[j]), v.name in self.moving]
                             for j, v in enumerate(sc.vms)])

    def _wanted(self, scheduled: np.ndarray, measured: np.ndarray, backlog_core_s: np.ndarray) -> np.ndarray:
        """Each VM's demand as the simulator counts it: the CPU it wanted this period, i.e. what it ran
        plus the work still waiting in its guest's queue, at most its vCPUs and at least what it ran (the
        simulator's demand is new work + backlog ≤ vCPUs, so demand − served = min(backlog, vCPUs −
        served)). A VM whose guest has not reported its queue (a host without guest queues): the
        scheduled load, whose per-period scatter against the measured load evens out over the run."""
        vcpus = np.array([v.vcpus for v in self.scenario.vms], dtype=float)
        wanted = np.minimum(vcpus, measured + np.nan_to_num(backlog_core_s) / self.scenario.tick_s)
        return np.where(np.isnan(backlog_core_s), scheduled, np.maximum(wanted, measured))

    def warm(self, polled: dict[str, PolledStats]) -> None:
        """A warm-up sample (before t = 0): kept only for the replay's starting loads (and the guests'
        queue counters at t = 0)."""
        self.guests.warm(polled)
        for stats in polled.values():
            for vm in stats.vms:
                if vm.vm in self.vm_index:
                    self.warm_sum[self.vm_index[vm.vm]] += vm.cpu_load
        self.warm_n += 1

    def measured_schedules(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        """Each VM's measured load as a step schedule, to replay the live run's loads in the simulator.

        The sample taken live at t_k measured the period before it, so it becomes the demand from
        t_k - tick on; the replay starts from the warm-up's mean (with the first sample), which is
        what the live Load Monitor's window held at its first plan.
        """
        t, rows, dt = self.rows.t_s, self.rows.vm_measured, self.scenario.tick_s
        schedules = []
        for j in range(len(self.scenario.vms)):
            first = (self.warm_sum[j] + rows[0][j]) / (self.warm_n + 1) if rows else 0.0
            steps = [(0.0, float(first))] + [(max(0.0, t[k] - dt), rows[k][j]) for k in range(1, len(rows))]
            schedules.append(tuple(steps))
        return tuple(schedules)

    def _metered_watts(self, t: np.ndarray, watts: np.ndarray) -> dict[str, Any]:
        """Put in ``watts`` (tick x host, the model's values) the first Power Monitor reading of each
        host taken in each tick (t[k] <= t_s < t[k+1]); returns how many host-ticks were metered."""
        filled = np.zeros(watts.shape, dtype=bool)
        names = [h.name for h in self.scenario.hosts]
        ticks = t.tolist()
        for t_s, reading in self.power_reports:
            k = bisect.bisect_right(ticks, t_s) - 1
            if k < 0:
                continue  # warm-up (before t = 0): stored, not part of the run's rows
            for h, name in enumerate(names):
                value = reading.get(name)
                if value is not None and not filled[k, h]:
                    watts[k, h] = value
                    filled[k, h] = True
        return {"source": "power monitor, model meter per host (fallback: the same model)",
                "metered_host_ticks": int(filled.sum()), "model_host_ticks": int((~filled).sum())}

    def result(self, policy: str, extra_summary: dict[str, Any]) -> RunResult:
        """The run as the simulator's RunResult (same arrays, same summary keys)."""
        t = np.array(self.rows.t_s)
        host = np.array(self.rows.host, dtype=float).reshape(len(t), len(self.scenario.hosts), 5)
        if self.power_reports:  # a live run with the Power Monitor: its readings are the watts
            params = {**extra_summary.get("params", {}), "watts": self._metered_watts(t, host[:, :, 3])}
            extra_summary = {**extra_summary, "params": params}
        vm = np.array(self.rows.vm, dtype=float).reshape(len(t), len(self.scenario.vms), 5)
        record = RunRecord(
            t_s=t, host_state=host[:, :, 0].astype(np.int8), host_demand=host[:, :, 1],
            host_served=host[:, :, 2], host_watts=host[:, :, 3], host_vms=host[:, :, 4].astype(np.int32),
            vm_host=vm[:, :, 0].astype(np.int32), vm_demand=vm[:, :, 1], vm_served=vm[:, :, 2],
            vm_load_avg=vm[:, :, 3], vm_migrating=vm[:, :, 4].astype(bool),
            migrations=list(self.migrations), power_events=list(self.power_events),
        )
        totals = self._summary(record, policy)
        return RunResult(self.scenario, record, totals, extra_summary)

    def _summary(self, rec: RunRecord, policy: str) -> RunSummary:
        """The simulator's summary (models.summary) from the recorded rows; a row's interval runs to the
        next row (the last one: a tick), and the whole run is the window."""
        sc, t = self.scenario, rec.t_s
        dt = np.diff(np.append(t, t[-1] + sc.tick_s)) if t.size else np.zeros(0)
        assert rec.vm_host is not None and rec.vm_demand is not None and rec.vm_served is not None
        meter = RunMeter(sc.hosts, len(sc.vms), float(t[-1] + sc.tick_s) if t.size else 0.0)
        load = np.array(self.rows.vm_load, dtype=float).reshape(len(t), len(sc.vms))
        for k in range(len(t)):
            meter.add(IntervalSample(float(t[k]), float(dt[k]), rec.host_state[k], rec.host_watts[k],
                                     rec.host_demand[k], rec.vm_host[k], load[k], rec.vm_demand[k],
                                     rec.vm_served[k]))
        return meter.finish(RunIdentity(sc.name, policy, self.method, 0, sc.tick_s), rec.migrations,
                            rec.power_events)


class LabHostMeter:
    """The ``model`` meter of an emulated lab host, read by the Power Monitor in a worker thread:
    the simulator's power model on the host's measured load in its power state (as hosts.csv
    records it), plus the migration extras of the moves it takes part in now.

    ``latest``: the manager's last poll (``ManagerService.latest_polled``, replaced each period).
    """

    kind = "model"

    def __init__(self, recorder: LabRecorder, host: str,
                 latest: Callable[[], Mapping[str, PolledStats]]) -> None:
        self._recorder = recorder
        self._h = recorder.host_index[host]
        self._host = host
        self._latest = latest
        spec = recorder.scenario.hosts[self._h]
        self._model = ModelMeter(spec.power, spec.cores, self._load)

    def _load(self) -> tuple[PowerState, float]:
        state = self._recorder.state[self._h]
        stats = self._latest().get(self._host)
        return state, stats.host.cpu_load if stats is not None and state is PowerState.ON else 0.0

    def read_watts(self) -> float:
        return self._model.read_watts() + float(self._recorder.extra_now[self._h])
