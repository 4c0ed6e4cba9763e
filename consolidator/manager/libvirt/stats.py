"""Host and domain statistics from one ``virConnectGetAllDomainStats`` call per host and period.

CPU: the difference of each domain's ``cpu.time`` (ns) between two polls over the wall time between
them, in cores; the host's from ``virNodeGetCPUStats`` (all CPUs). Dirty rate: QEMU's page-sampling
measurement, started with ``virDomainStartDirtyRateCalc`` after each poll and read at the next one
from the ``dirtyrate.*`` fields (``megabytes_per_second``, MiB/s), so it lags one period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import libvirt

from consolidator.domain.samples import HostSample, VmSample

log = logging.getLogger(__name__)

MIB = 1024 * 1024
STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
         | libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
DIRTY_DONE = 2  # dirtyrate.calc_status: measured


@dataclass(frozen=True, slots=True)
class DomainStats:
    name: str
    cpu_ns: int
    mem_mib: float
    running: bool
    dirty_bytes_per_s: float | None


def parse_domain(name: str, fields: dict[str, Any]) -> DomainStats:
    """One domain's record from virConnectGetAllDomainStats."""
    dirty = None
    if fields.get("dirtyrate.calc_status") == DIRTY_DONE and "dirtyrate.megabytes_per_second" in fields:
        dirty = float(fields["dirtyrate.megabytes_per_second"]) * MIB
    mem_kib = fields.get("balloon.current", fields.get("balloon.maximum", 0))
    return DomainStats(name=name, cpu_ns=int(fields.get("cpu.time", 0)), mem_mib=mem_kib / 1024,
                       running=fields.get("state.state") == libvirt.VIR_DOMAIN_RUNNING, dirty_bytes_per_s=dirty)


def node_busy_ns(cpu: dict[str, int]) -> int:
    return sum(v for k, v in cpu.items() if k in ("kernel", "user", "iowait"))


@dataclass(frozen=True, slots=True)
class HostStats:
    host: HostSample
    vms: tuple[VmSample, ...]


class StatsReader:
    """Per host: remembers the previous poll's counters to turn them into rates."""

    def __init__(self, host: str, dirty_calc_s: int = 1) -> None:
        self.host = host
        self.dirty_calc_s = dirty_calc_s  # 0: no dirty-rate measurement
        self._prev_wall: float | None = None
        self._prev_cpu: dict[str, int] = {}
        self._prev_node_busy: int | None = None

    def read(self, conn: libvirt.virConnect, t_s: float, overhead_per_vm: float | None = None,
             moving: frozenset[str] = frozenset()) -> HostStats:
        """``moving``: domains in a migration here; no dirty-rate measurement is started for them
        (it needs a job of its own and would wait for the migration's end)."""
        wall = time.monotonic()
        # NOWAIT: a domain busy with a job (a migration) reports what it can at once, not after the job
        records = conn.getAllDomainStats(STATS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
                                         | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        node_busy = node_busy_ns(conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS))
        dt_ns = None if self._prev_wall is None else max(1.0, (wall - self._prev_wall) * 1e9)
        vms: list[VmSample] = []
        cpu: dict[str, int] = {}
        for dom, fields in records:
            d = parse_domain(dom.name(), fields)
            cpu[d.name] = d.cpu_ns
            prev = self._prev_cpu.get(d.name)
            if dt_ns is not None and prev is not None and d.cpu_ns >= prev:
                vms.append(VmSample(t_s=t_s, vm=d.name, host=self.host, cpu_load=(d.cpu_ns - prev) / dt_ns,
                                    dirty_bytes_per_s=d.dirty_bytes_per_s))
            if d.running and self.dirty_calc_s > 0 and d.name not in moving:
                self._start_dirty_calc(dom)
        load = 0.0
        if dt_ns is not None and self._prev_node_busy is not None:
            load = max(0.0, (node_busy - self._prev_node_busy) / dt_ns)
        if overhead_per_vm is not None:  # emulated hosts sharing one machine (see manager.poller)
            load = sum(v.cpu_load for v in vms) + overhead_per_vm * len(vms)
        self._prev_wall, self._prev_cpu, self._prev_node_busy = wall, cpu, node_busy
        host = HostSample(t_s=t_s, host=self.host, cpu_load=load, mem_used_mib=_mem_used_mib(conn))
        return HostStats(host=host, vms=tuple(vms))

    def _start_dirty_calc(self, dom: libvirt.virDomain) -> None:
        try:
            dom.startDirtyRateCalc(self.dirty_calc_s, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
        except libvirt.libvirtError as exc:  # busy (a migration runs) or a measurement still running
            log.debug("%s: dirty-rate measurement of %s not started: %s", self.host, dom.name(), exc)


def _mem_used_mib(conn: libvirt.virConnect) -> float:
    try:
        mem = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
    except libvirt.libvirtError:
        return 0.0
    free = mem.get("free", 0) + mem.get("buffers", 0) + mem.get("cached", 0)
    return float(max(0, mem.get("total", 0) - free)) / 1024
