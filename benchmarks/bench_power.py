"""Management-node overhead at 100 hosts / 1,000 VMs, 1 s period (issue 4 target: < 5 % of one core).

    python3 benchmarks/bench_power.py [--periods 120] [--json]

Each period does what the live manager does on its node: build the period's 1,100 samples, record
them in the Load Monitor (written through to a real SQLite run store and flushed), read 100 model
meters through the Power Monitor (worker threads, timeouts, energy integration, stored), and run one
control tick with the `paper` policy (snapshot, plan, controller). The cluster is a stand-in that
completes every migration, suspend and wake at once (no QEMU: this measures the manager, not the
hosts). CPU is process CPU time (all threads) per period, as a share of one core at a 1 s period.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from consolidator.control.loop import ControlLoop, build_loop
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.samples import HostSample, VmSample
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, Role, VmSpec
from consolidator.policies.registry import make_policy
from consolidator.power.meters import ModelMeter
from consolidator.power.monitor import PowerMonitor
from consolidator.storage import open_store

N_WAREHOUSES, N_SERVERS, N_VMS = 10, 90, 1000


class InstantCluster:
    """Stand-in ClusterPort: every command completes at once (its events reach the loop next period)."""

    def __init__(self) -> None:
        self.pending: list[Event] = []
        self.now = 0.0
        self.migrations = 0

    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        self.migrations += 1
        self.pending += [MigrationStarted(self.now, vm, src, dst, method),
                         MigrationFinished(self.now, vm, src, dst, method, MigrationOutcome.COMPLETED, self.now)]

    def cancel_migration(self, vm: str) -> None:
        pass

    def suspend_host(self, host: str) -> None:
        self.pending.append(HostPowerChanged(self.now, host, PowerState.SUSPENDED))

    def wake_host(self, host: str) -> None:
        self.pending.append(HostPowerChanged(self.now, host, PowerState.ON))


def build(store_path: Path) -> tuple[ControlLoop, InstantCluster, PowerMonitor, object, list[float]]:
    hosts = [HostSpec(f"w{i}", Role.WAREHOUSE, 16, 262144) for i in range(N_WAREHOUSES)]
    hosts += [HostSpec(f"s{i}", Role.SERVER, 4, 16384) for i in range(N_SERVERS)]
    vms = [VmSpec(f"vm{i}") for i in range(N_VMS)]
    placement = {v.name: f"w{i % N_WAREHOUSES}" for i, v in enumerate(vms)}
    states = {h.name: PowerState.ON if h.role is Role.WAREHOUSE else PowerState.SUSPENDED for h in hosts}
    store = open_store(store_path)
    cluster = InstantCluster()
    loop = build_loop(hosts, vms, placement, make_policy("paper"), cluster, store, MigrationMethod.POSTCOPY, states)
    clock = [0.0]
    meters = {h.name: ModelMeter(h.power, h.cores, _load_of(loop, i)) for i, h in enumerate(hosts)}
    monitor = PowerMonitor(meters, lambda: clock[0], sink=store)
    return loop, cluster, monitor, store, clock


def _load_of(loop: ControlLoop, i: int):  # type: ignore[no-untyped-def]
    def load() -> tuple[PowerState, float]:
        return PowerState.ON, float(loop.monitor.host_now[i])
    return load


def run(periods: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="consolidator-bench-") as tmp:
        loop, cluster, monitor, store, clock = build(Path(tmp) / "run.sqlite")
        host_names, vm_names = loop.monitor.host_names, loop.monitor.vm_names
        active = rng.random(N_VMS) < 0.1
        cpu_start, wall_start = time.process_time(), time.perf_counter()

        async def periods_loop() -> None:
            nonlocal active
            for t in range(periods):
                now = float(t)
                clock[0] = cluster.now = now
                for ev in cluster.pending:
                    loop.on_event(ev)
                cluster.pending.clear()
                if t % 30 == 0:
                    active = rng.random(N_VMS) < 0.1
                vm_load = np.where(active, rng.uniform(0.7, 1.0, N_VMS), rng.uniform(0.0, 0.05, N_VMS))
                runs_on = loop.controller.runs_on()
                host_load = np.bincount(runs_on[runs_on >= 0], weights=vm_load[runs_on >= 0],
                                        minlength=len(host_names))
                hs = [HostSample(now, h, float(host_load[i])) for i, h in enumerate(host_names)]
                vs = [VmSample(now, v, host_names[runs_on[i]], float(vm_load[i])) for i, v in enumerate(vm_names)]
                for s in hs:
                    loop.monitor.record_host(s)
                for s in vs:
                    loop.monitor.record_vm(s)
                await monitor.sample()
                loop.tick(now)
                store.flush()  # type: ignore[attr-defined]

        asyncio.run(periods_loop())
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        monitor.close()
        rows = store.count("vm_samples")  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]
    return {"periods": float(periods), "cpu_s_per_period": cpu / periods,
            "core_share_pct_at_1s": 100.0 * cpu / periods, "wall_s_per_period": wall / periods,
            "migrations": float(cluster.migrations), "vm_rows_stored": float(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=120)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.periods)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"100 hosts / 1,000 VMs, {args.periods} periods of 1 s, paper policy, SQLite store, 100 model meters")
    print(f"  CPU per period:   {figures['cpu_s_per_period'] * 1000:.1f} ms "
          f"= {figures['core_share_pct_at_1s']:.2f} % of one core (target < 5 %)")
    print(f"  wall per period:  {figures['wall_s_per_period'] * 1000:.1f} ms")
    print(f"  migrations started: {figures['migrations']:.0f}, VM samples stored: {figures['vm_rows_stored']:.0f}")


if __name__ == "__main__":
    main()
