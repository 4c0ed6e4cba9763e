"""Stats poller: asks every agent for host and VM stats once a period and records them.

Lab hosts share one machine, so their agents report a VM's load as a share of its cgroup quota
(the quota is the VM's "100 %", DESIGN §5); a real host reports cores as measured.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from consolidator.agent.api.schemas import HostStatsView
from consolidator.control.ports import HostSample, VmSample
from consolidator.manager.client import AgentClient, AgentError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolledStats:
    host: HostSample
    vms: tuple[VmSample, ...]
    raw: HostStatsView


def samples_of(view: HostStatsView, t_s: float) -> PolledStats:
    """Samples for the Load Monitor. An emulated (lab) host reports loads in lab units, each VM's
    quota counting as one core (DESIGN §5); a real host reports cores as measured."""
    vms = tuple(
        VmSample(t_s=t_s, vm=stats.name, host=view.host,
                 cpu_load=stats.lab_load if view.emulated else stats.cpu_load,
                 dirty_bytes_per_s=stats.dirty_bytes_per_s)
        for stats in view.vms
    )
    host = HostSample(t_s=t_s, host=view.host, cpu_load=view.cpu_load, mem_used_mib=view.mem_used_mib,
                      watts=view.watts)
    return PolledStats(host=host, vms=vms, raw=view)


class StatsPoller:
    """Polls all agents concurrently; an agent that does not answer (asleep, down) is skipped."""

    def __init__(self, clients: dict[str, AgentClient]) -> None:
        self._clients = clients
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
                polled[host] = samples_of(answer, t_s)
        return polled
