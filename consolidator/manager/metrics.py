"""The manager's Prometheus metrics (prometheus-client), on a registry of its own (no module globals).

Names (all prefixed ``consolidator_``):
    host_power_state{host,state} 1 for the host's state   host_watts{host}   host_load_cores{host}
    vm_load{vm}   vm_host{vm,host} 1 where the VM runs      migrations_running
    migrations_total{method,outcome}   migration_duration_seconds{method}   migration_downtime_seconds{method}
    wake_attempts_total{method}   wake_failures_total{method}   plan_latency_seconds
    energy_joules_total   energy_all_on_joules_total   energy_saved_joules_total
    rule_refusals_total{rule}   plans_total{mode}   mode{mode} 1 for the current mode   mode_changes_total
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consolidator.domain.types import PowerState
from consolidator.manager.mode import ManagerMode

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

HOST_STATES = [s.value for s in PowerState] + ["unknown"]
DURATION_BUCKETS_S = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
DOWNTIME_BUCKETS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5)
PLAN_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1)


class Metrics:
    """Every collector of one manager; ``exposition()`` is the /metrics body."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "consolidator_"
        self.host_state = Gauge(p + "host_power_state", "1 for the host's current power state",
                                ["host", "state"], registry=r)
        self.host_watts = Gauge(p + "host_watts", "Host power (W), metered or modelled", ["host"], registry=r)
        self.host_load = Gauge(p + "host_load_cores", "Host CPU load (cores)", ["host"], registry=r)
        self.vm_load = Gauge(p + "vm_load", "VM CPU load (share of one core)", ["vm"], registry=r)
        self.vm_host = Gauge(p + "vm_host", "1 on the host where the VM runs", ["vm", "host"], registry=r)
        self.running = Gauge(p + "migrations_running", "Migrations in flight", registry=r)
        self.migrations = Counter(p + "migrations", "Finished migrations", ["method", "outcome"], registry=r)
        self.duration = Histogram(p + "migration_duration_seconds", "Migration duration", ["method"],
                                  buckets=DURATION_BUCKETS_S, registry=r)
        self.downtime = Histogram(p + "migration_downtime_seconds", "Guest pause of a completed migration",
                                  ["method"], buckets=DOWNTIME_BUCKETS_S, registry=r)
        self.wake_attempts = Counter(p + "wake_attempts", "Wake attempts", ["method"], registry=r)
        self.wake_failures = Counter(p + "wake_failures", "Failed wake attempts", ["method"], registry=r)
        self.plan_latency = Histogram(p + "plan_latency_seconds", "Poll-to-decision time of one period",
                                      buckets=PLAN_BUCKETS_S, registry=r)
        self.energy = Counter(p + "energy_joules", "Energy drawn by the managed hosts", registry=r)
        self.energy_all_on = Counter(p + "energy_all_on_joules",
                                     "Estimated energy with every host kept on", registry=r)
        self.energy_saved = Counter(p + "energy_saved_joules",
                                    "Estimated energy saved against keeping every host on", registry=r)
        self.refusals = Counter(p + "rule_refusals", "Actions refused or changed by an operator rule",
                                ["rule"], registry=r)
        self.plans = Counter(p + "plans", "Plans made", ["mode"], registry=r)
        self.mode = Gauge(p + "mode", "1 for the current mode", ["mode"], registry=r)
        self.mode_changes = Counter(p + "mode_changes", "Mode switches", registry=r)
        self._vm_hosts: dict[str, str] = {}

    def set_host(self, host: str, state: str, watts: float | None, load: float) -> None:
        for name in HOST_STATES:
            self.host_state.labels(host, name).set(1.0 if name == state else 0.0)
        if watts is not None:
            self.host_watts.labels(host).set(watts)
        self.host_load.labels(host).set(load)

    def set_vm(self, vm: str, host: str, load: float) -> None:
        self.vm_load.labels(vm).set(load)
        old = self._vm_hosts.get(vm)
        if old is not None and old != host:
            self.vm_host.remove(vm, old)
        self._vm_hosts[vm] = host
        self.vm_host.labels(vm, host).set(1.0)

    def forget_vm(self, vm: str) -> None:
        """A VM that left the cluster (destroyed outside the manager) leaves the metrics too."""
        host = self._vm_hosts.pop(vm, None)
        if host is not None:
            self.vm_host.remove(vm, host)
            self.vm_load.remove(vm)

    def set_mode(self, mode: ManagerMode) -> None:
        for each in ManagerMode:
            self.mode.labels(each.value).set(1.0 if each is mode else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
