"""Run one simulation into a run folder (docs/run-format.md): CSV time series, summary, run.sqlite."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from consolidator.domain.samples import PowerSample
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.policies.registry import make_policy
from consolidator.sim.engine import RunResult, Simulation
from consolidator.sim.scenario import Scenario
from consolidator.storage import open_store


def simulate(
    scenario: Scenario,
    policy: str,
    method: MigrationMethod,
    seed: int | None = None,
    out_dir: Path | None = None,
    policy_args: dict[str, float] | None = None,
    record_vms: bool = True,
) -> RunResult:
    """Simulate ``scenario``; with ``out_dir``, store every sample in run.sqlite and write the folder."""
    pol = make_policy(policy, **(policy_args or {}))
    instant = method is MigrationMethod.INSTANT
    if out_dir is None:
        return Simulation(scenario, pol, method, seed=seed, instant=instant, record_vms=record_vms).run()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "run.sqlite"
    db.unlink(missing_ok=True)
    with open_store(db) as store:
        sim = Simulation(scenario, pol, method, seed=seed, sink=store, instant=instant, record_vms=True)
        result = sim.run()
        _store_power(store, result)
    write_run(result, out_dir)
    return result


def _store_power(store: object, result: RunResult) -> None:
    """The simulated Power Monitor: one reading per host per tick, from the power model."""
    rec, hosts = result.record, result.scenario.hosts
    samples = [
        PowerSample(float(t + result.scenario.tick_s), h.name, "model", float(rec.host_watts[k, i]))
        for k, t in enumerate(rec.t_s) for i, h in enumerate(hosts)
    ]
    store.write_power_samples(samples)  # type: ignore[attr-defined]
    store.flush()  # type: ignore[attr-defined]


def write_run(result: RunResult, out_dir: Path) -> None:
    rec, sc = result.record, result.scenario
    hosts, vms = sc.hosts, sc.vms
    with open(out_dir / "hosts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "host", "role", "state", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms"])
        for k, t in enumerate(rec.t_s):
            for i, h in enumerate(hosts):
                demand, served = rec.host_demand[k, i], rec.host_served[k, i]
                w.writerow([f"{t:g}", h.name, h.role.value, PowerState.from_code(rec.host_state[k, i]).value,
                            f"{demand:.5f}", f"{served:.5f}", f"{max(0.0, demand - served):.5f}",
                            f"{rec.host_watts[k, i]:.3f}", int(rec.host_vms[k, i])])
    if rec.vm_host is not None:
        assert rec.vm_demand is not None and rec.vm_served is not None
        assert rec.vm_load_avg is not None and rec.vm_migrating is not None
        with open(out_dir / "vms.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_s", "vm", "host", "demand", "served", "load_avg", "migrating", "backlog"])
            backlog = rec.vm_backlog if rec.vm_backlog is not None else np.zeros_like(rec.vm_served)
            for k, t in enumerate(rec.t_s):
                for j, v in enumerate(vms):
                    w.writerow([f"{t:g}", v.name, hosts[rec.vm_host[k, j]].name, f"{rec.vm_demand[k, j]:.5f}",
                                f"{rec.vm_served[k, j]:.5f}", f"{rec.vm_load_avg[k, j]:.5f}",
                                int(rec.vm_migrating[k, j]), f"{backlog[k, j]:.5f}"])
    with open(out_dir / "migrations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["vm", "src", "dst", "method", "start_s", "end_s", "outcome", "bytes_sent", "downtime_s",
                    "rounds"])
        for m in rec.migrations:
            w.writerow([m.vm, m.src, m.dst, m.method.value, f"{m.start_s:.3f}", f"{m.t_s:.3f}", m.outcome.value,
                        f"{m.bytes_sent:.0f}", f"{m.downtime_s:.4f}", m.rounds])
    with open(out_dir / "power_events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "host", "state"])
        for e in rec.power_events:
            w.writerow([f"{e.t_s:.3f}", e.host, e.state.value])
    (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2, default=_plain) + "\n")


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (PowerState, MigrationMethod)):
        return value.value
    return str(value)


def timeline(result: RunResult) -> dict[str, object]:
    """The simple scenario's interface: migrations, power events (suspended / on) and energy."""
    rec = result.record
    return {
        "scenario": result.scenario.name,
        "migration": result.method.value,
        "migrations": [
            {"vm": m.vm, "src": m.src, "dst": m.dst, "method": m.method.value, "start_s": round(m.start_s, 3),
             "end_s": round(float(m.t_s), 3), "outcome": m.outcome.value}
            for m in rec.migrations
        ],
        "power_events": [
            {"host": e.host, "state": e.state.value, "t_s": round(float(e.t_s), 3)}
            for e in rec.power_events if e.state in (PowerState.SUSPENDED, PowerState.ON)
        ],
        "energy_ws": round(result.summary["energy_ws"], 1),
        "unserved_cpu_pct": round(result.summary["unserved_cpu_pct"], 3),
    }
