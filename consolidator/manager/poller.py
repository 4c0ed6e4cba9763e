"""Stats poller: asks every agent for host and VM stats once a period and records them.

Lab hosts share one machine, so their agents report a VM's load as a share of its cgroup quota
(the quota is the VM's "100 %", DESIGN §5); a real host reports cores as measured.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from consolidator.domain.samples import HostSample, VmSample
from consolidator.manager.client import AgentError
from consolidator.manager.engine import Engine
from consolidator.protocol.schemas import HostStatsView

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolledStats:
    host: HostSample
    vms: tuple[VmSample, ...]
    raw: HostStatsView


def samples_of(view: HostStatsView, t_s: float, overhead_per_vm: float | None = None) -> PolledStats:
    """Samples for the Load Monitor. An emulated (lab) host reports loads in lab units, each VM's
    quota counting as one core (DESIGN §5); a real host reports cores as measured.

    ``overhead_per_vm``: take a host's load as its VMs' loads plus this much per VM instead of the
    host's measured CPU. The lab uses it under TCG, whose emulation costs an idle guest ≈ 0.09
    cores (docs/agent.md) — CPU a KVM host does not spend — so that the planner sees the
    virtualisation overhead the scenario models rather than the emulator's.
    """
    vms = tuple(
        VmSample(t_s=t_s, vm=stats.name, host=view.host,
                 cpu_load=stats.lab_load if view.emulated else stats.cpu_load,
                 dirty_bytes_per_s=stats.dirty_bytes_per_s)
        for stats in view.vms
        if not stats.load_pending  # the Load Monitor keeps the VM's previous value for this period
    )
    load = view.cpu_load
    if overhead_per_vm is not None:
        load = sum(v.cpu_load for v in vms) + overhead_per_vm * len(vms)
    host = HostSample(t_s=t_s, host=view.host, cpu_load=load, mem_used_mib=view.mem_used_mib,
                      watts=view.watts)
    return PolledStats(host=host, vms=vms, raw=view)


class StatsPoller:
    """Polls all agents concurrently; an agent that does not answer (asleep, down) is skipped."""

    def __init__(self, clients: dict[str, Engine], overhead_per_vm: float | None = None) -> None:
        self._clients = clients
        self._overhead_per_vm = overhead_per_vm
        self.misses: dict[str, int] = {host: 0 for host in clients}

    async def poll(self, t_s: float) -> dict[str, PolledStats]:
        hosts = list(self._clients)
        answers = await asyncio.gather(*(self._clients[h].host_stats() for h in hosts),
                                       return_exceptions=True)
        polled: dict[str, PolledStats] = {}
        for host, answer in zip(hosts, answers, strict=True):
            if isinstance(answer, AgentError):
                self.misses[host] += 1
                log.debug("no stats from %s: %s", host, answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                polled[host] = samples_of(answer, t_s, self._overhead_per_vm)
        return polled
