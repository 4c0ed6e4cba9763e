"""The guests' own work queues in a live run, beside the simulator's backlog and delay of work.

Every period the agents of emulated hosts read each guest's workload generator (``GuestQueueView``:
tasks issued, done, queued, work waiting, delay sum and histogram; cumulative since boot, and they
travel with the VM). ``GuestQueues`` keeps the reading at t = 0 (the last of the warm-up) and one per
tick; ``compare_backlog`` sets the run's differences beside the simulated run of the same scenario:
per VM the peak backlog and when it drained, and over all work the mean, 95th percentile and maximum
extra delay. Definitions differ in one way: the simulator weighs delay by work and counts in ticks
(work served in the tick it arrived waited 0), the guest counts each task's wait beyond its own work
in wall time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from consolidator.agent.qemu.guestctl import delay_bin_upper_s
from consolidator.manager.poller import PolledStats
from consolidator.protocol.schemas import GuestQueueView
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario

DRAINED_CORE_S = 0.05  # a backlog below this is drained (a few 20 ms tasks)


class GuestQueues:
    """The guest queue readings of one live run (fed by the lab's warm-up and tick hooks)."""

    def __init__(self, scenario: Scenario) -> None:
        self.names = [v.name for v in scenario.vms]
        self.baseline: dict[str, GuestQueueView] = {}
        self.latest: dict[str, GuestQueueView] = {}
        self.t_s: list[float] = []
        self.backlog_s: list[list[float]] = []  # per tick, per VM: work waiting (NaN: no reading yet)

    @staticmethod
    def _readings(polled: Mapping[str, PolledStats]) -> dict[str, GuestQueueView]:
        return {vm.name: vm.guest_queue for stats in polled.values() if stats.raw is not None
                for vm in stats.raw.vms if vm.guest_queue is not None}

    def warm(self, polled: Mapping[str, PolledStats]) -> None:
        self.baseline.update(self._readings(polled))

    def tick(self, t_s: float, polled: Mapping[str, PolledStats]) -> None:
        now = self._readings(polled)
        for name, queue in now.items():
            self.baseline.setdefault(name, queue)
        self.latest.update(now)
        self.t_s.append(t_s)
        self.backlog_s.append([self.latest[n].backlog_s if n in self.latest else float("nan")
                               for n in self.names])

    def delays(self) -> dict[str, Any]:
        """Tasks finished during the run and their extra delay (mean, p95 from the histogram, max)."""
        done, total, hist = 0, 0.0, np.zeros(128, dtype=np.int64)
        worst = 0.0
        for name, end in self.latest.items():
            start = self.baseline[name]
            done += end.done - start.done
            total += end.delay_sum_s - start.delay_sum_s
            for k, count in end.delay_hist.items():
                hist[k] += count - start.delay_hist.get(k, 0)
            if end.delay_max_s > start.delay_max_s:
                worst = max(worst, end.delay_max_s)
        p95 = None
        if hist.sum() > 0:
            k95 = int(np.searchsorted(np.cumsum(hist), 0.95 * hist.sum()))
            p95 = delay_bin_upper_s(k95)
        top = int(np.flatnonzero(hist)[-1]) if hist.any() else None
        return {"tasks_done": done, "mean_s": total / done if done else None, "p95_s": p95,
                "max_s": worst if worst else (delay_bin_upper_s(top) if top is not None else None),
                "issued": sum(e.tasks - self.baseline[n].tasks for n, e in self.latest.items()),
                "queued_end": sum(e.queued for e in self.latest.values()),
                "dropped": sum(e.dropped - self.baseline[n].dropped for n, e in self.latest.items())}


def _peak(t: np.ndarray, backlog: np.ndarray) -> dict[str, float | None]:
    """Peak backlog, when, and the first time after it that the backlog was drained."""
    if backlog.size == 0 or np.all(np.isnan(backlog)):
        return {"peak_core_s": None, "peak_t_s": None, "drained_t_s": None, "end_core_s": None}
    k = int(np.nanargmax(backlog))
    after = np.flatnonzero(np.nan_to_num(backlog[k:], nan=np.inf) < DRAINED_CORE_S)
    return {"peak_core_s": float(backlog[k]), "peak_t_s": float(t[k]),
            "drained_t_s": float(t[k + after[0]]) if after.size else None,
            "end_core_s": float(backlog[~np.isnan(backlog)][-1])}


def compare_backlog(sim: RunResult, guests: GuestQueues, time_scale: float) -> dict[str, Any]:
    """Per VM the simulated and the guest's backlog (peak, when, drained), and the delay of work."""
    rec = sim.record
    t_live = np.array(guests.t_s)
    live_b = np.array(guests.backlog_s, dtype=float).reshape(len(t_live), len(guests.names))
    vms = []
    dt = sim.scenario.tick_s
    for j, name in enumerate(guests.names):
        sim_b = rec.vm_backlog[:, j] if rec.vm_backlog is not None else np.zeros(0)
        start, end = guests.baseline.get(name), guests.latest.get(name)
        live_served = end.busy_s - start.busy_s if start is not None and end is not None else None
        in_window = rec.t_s < sim.scenario.duration_s
        sim_served = float(rec.vm_served[in_window, j].sum() * dt) if rec.vm_served is not None else None
        vms.append({"vm": name, "sim": {**_peak(rec.t_s, sim_b), "served_core_s": sim_served},
                    "live": {**_peak(t_live, live_b[:, j]), "served_core_s": live_served,
                             "backlog_t0_core_s": None if start is None else start.backlog_s}})
    w = sim.totals.work
    return {
        "method": sim.method.value, "time_scale": time_scale, "tick_s": sim.scenario.tick_s, "vms": vms,
        "series": {"t_s": [float(x) for x in rec.t_s], "sim": np.round(rec.vm_backlog, 4).tolist()
                   if rec.vm_backlog is not None else [],
                   "live_t_s": guests.t_s, "live": np.round(np.nan_to_num(live_b, nan=-1.0), 4).tolist()},
        "delay": {"sim": {"mean_s": w.delay_mean_s, "p95_s": w.delay_p95_s, "max_s": w.delay_max_s,
                          "backlog_end_core_s": w.backlog_end_core_s, "work_served_core_s": w.served_core_s}
                  if w is not None else dict.fromkeys(("mean_s", "p95_s", "max_s", "backlog_end_core_s",
                                                       "work_served_core_s")),
                  "live": guests.delays()},
    }


def backlog_markdown(c: dict[str, Any]) -> list[str]:
    """The comparison as markdown lines (appended to comparison.md)."""
    def f(v: Any, fmt: str = "{:.2f}") -> str:
        return "—" if v is None else fmt.format(v)

    lines = [f"## {c['method']}: backlog and delay of work, simulator against the guests' own queues", "",
             "| VM | served in the window sim (core·s) | live | peak backlog sim (core·s) | live | at sim (s) | live "
             "| drained sim (s) | live | live backlog at t = 0 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v in c["vms"]:
        a, b = v["sim"], v["live"]
        cells = [f(a["served_core_s"]), f(b["served_core_s"]), f(a["peak_core_s"]), f(b["peak_core_s"]),
                 f(a["peak_t_s"], "{:.1f}"), f(b["peak_t_s"], "{:.1f}"),
                 f(a["drained_t_s"], "{:.1f}"), f(b["drained_t_s"], "{:.1f}"), f(b["backlog_t0_core_s"])]
        lines.append(f"| {v['vm']} | " + " | ".join(cells) + " |")
    d, g = c["delay"]["sim"], c["delay"]["live"]
    lines += ["", "| extra delay of work (lab s) | mean | p95 | max |", "|---|---|---|---|",
              f"| simulator (work-weighted, tick {c['tick_s']:g} s) | {f(d['mean_s'], '{:.3f}')} | "
              f"{f(d['p95_s'], '{:.3f}')} | {f(d['max_s'], '{:.3f}')} |",
              f"| guests ({g['tasks_done']} tasks) | {f(g['mean_s'], '{:.3f}')} | {f(g['p95_s'], '{:.3f}')} "
              f"(bin edge) | {f(g['max_s'], '{:.3f}')} |", "",
              f"Guests: {g['issued']} tasks issued during the run, {g['queued_end']} still queued at its end, "
              f"{g['dropped']} dropped. Simulator: backlog at the window's end "
              f"{f(d['backlog_end_core_s'])} core·s.", ""]
    return lines
