"""What the manager service builds from cluster.toml, and the views it derives each period."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from consolidator.control.controller import Move, VMController
from consolidator.control.loop import ControlLoop
from consolidator.control.rules import RuleBook
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState
from consolidator.manager.client import AgentError
from consolidator.manager.cluster import RemoteCluster
from consolidator.manager.config import ClusterConfig, power_config
from consolidator.manager.discovery import Inventory
from consolidator.manager.engine import Engine
from consolidator.manager.metrics import Metrics
from consolidator.manager.poller import PolledStats
from consolidator.manager.telemetry import HostStatus, VmStatus
from consolidator.models.migration import MigrationParams, OnTimeoutPolicy
from consolidator.models.power import host_watts
from consolidator.power.wake import PowerController, WakeFailed
from consolidator.protocol.migration import MigrationOptions

log = logging.getLogger(__name__)


def rule_book(cfg: ClusterConfig) -> RuleBook:
    lim = cfg.limits
    return RuleBook(
        pinned=frozenset(v for v, r in cfg.vms.items() if r.pin),
        excluded=frozenset(v for v, r in cfg.vms.items() if r.exclude),
        never_postcopy=frozenset(v for v, r in cfg.vms.items() if r.never_postcopy),
        maintenance=frozenset(h for h, c in cfg.hosts.items() if c.maintenance),
        reserve_hosts=lim.reserve_hosts, min_hold_s=lim.min_hold_s,
        max_moves_per_vm_per_hour=lim.max_moves_per_vm_per_hour,
        max_migrations_per_host=lim.max_migrations_per_host,
        max_migrations_per_minute=lim.max_migrations_per_minute,
        move_retry_max=lim.move_retry_max, move_backoff_s=lim.move_backoff_s,
        wake_retry_max=lim.wake_retry_max, wake_backoff_s=lim.wake_backoff_s, give_up_s=lim.give_up_s,
    )


def options_of(cfg: ClusterConfig) -> MigrationOptions:
    return cfg.migration.options()


def migration_params(cfg: ClusterConfig) -> MigrationParams:
    """The simulator's migration model with this cluster's options (for predictions)."""
    m = cfg.migration
    return MigrationParams(bandwidth_bytes_per_s=m.max_bandwidth_bytes_per_s or 120e6,
                           downtime_limit_s=m.downtime_limit_s, timeout_s=m.timeout_s,
                           on_timeout=OnTimeoutPolicy(m.on_timeout.value), hybrid_rounds=m.hybrid_precopy_rounds)


class ConfigWaker:
    """Wakes a host by its configured methods (hosts.NAME.power.wake, in order), else through its
    engine (an emulated lab host); counts attempts and failures per method in the metrics."""

    def __init__(self, controller: PowerController, engines: Mapping[str, Engine], metrics: Metrics) -> None:
        self.controller, self.engines, self.metrics = controller, engines, metrics

    async def wake(self, host: str) -> None:
        if host in self.controller.wakers:
            result = await self.controller.wake_with_result(host)
            for attempt in result.attempts:
                self.metrics.wake_attempts.labels(attempt.method).inc()
                if not attempt.ok:
                    self.metrics.wake_failures.labels(attempt.method).inc()
            if not result.ok:
                raise WakeFailed(result.summary())
            return
        self.metrics.wake_attempts.labels("engine").inc()
        try:
            await self.engines[host].wake()
        except AgentError:
            self.metrics.wake_failures.labels("engine").inc()
            raise


def waker_for(cfg: ClusterConfig, engines: Mapping[str, Engine], metrics: Metrics) -> ConfigWaker:
    return ConfigWaker(power_config(cfg, "cluster.toml").controller, engines, metrics)


def adopt_moves(controller: VMController, cluster: RemoteCluster, inv: Inventory, method: MigrationMethod,
                now: float) -> list[str]:
    """Migrations found running at start become the controller's own: it waits for their end and
    never starts them again."""
    adopted = []
    for name, flight in inv.in_flight.items():
        v = controller.vm_index.get(name)
        if v is None:
            continue
        src, dst = controller.host_index[flight.src], controller.host_index[flight.dst]
        how = MigrationMethod.POSTCOPY if flight.postcopy else method
        controller.moves[v] = Move(v, src, dst, how, now, started=True)
        cluster.in_flight[name] = (flight.src, flight.dst)
        adopted.append(name)
        log.info("adopted the migration of %s %s -> %s already in flight", name, flight.src, flight.dst)
    return adopted


def host_view(loop: ControlLoop, polled: Mapping[str, PolledStats], specs: Mapping[str, HostSpec],
              unknown: set[str], book: RuleBook, metered: Mapping[str, float | None],
              ) -> tuple[list[HostStatus], list[VmStatus], dict[str, float | None], float]:
    """Hosts and VMs for the API, each host's watts (its meter's reading in ``metered``, else what
    its agent models, else the power model's), and the
    estimate of what every host kept on would draw (hosts not on at their idle power)."""
    c, m = loop.controller, loop.monitor
    on_host: dict[str, list[str]] = {h.name: [] for h in c.hosts}
    vms = []
    for i, vm in enumerate(c.vms):
        if c.lost[i]:
            continue
        host = c.hosts[int(c.vm_at[i])].name
        on_host[host].append(vm.name)
        rules = tuple(r for r, names in (("pin", book.pinned), ("exclude", book.excluded),
                                         ("never_postcopy", book.never_postcopy)) if vm.name in names)
        vms.append(VmStatus(vm.name, host, round(float(m.vm_now[i]), 4), rules))
    hosts, watts, all_on = [], {}, 0.0
    for i, h in enumerate(c.hosts):
        state = c.power_state(i)
        load = float(m.host_now[i])
        stats = polled.get(h.name)
        w = metered.get(h.name)
        if w is None and stats is not None:
            w = stats.raw.watts
        if w is None and h.name not in unknown:
            w = host_watts(specs[h.name].power, state, load, h.cores)
        watts[h.name] = w
        all_on += (w or 0.0) if state is PowerState.ON else host_watts(h.power, PowerState.ON, 0.0, h.cores)
        shown = "unknown" if h.name in unknown else state.value
        hosts.append(HostStatus(h.name, shown, w, round(load, 4), tuple(on_host[h.name]), h.name in book.maintenance))
    return hosts, vms, watts, all_on

