"""Discovery: what runs where, read from every host's engine (at start and every period).

A VM is *placed* on the host that runs it (RUNNING, STARTING, PAUSED) or sends it (MIGRATING). A VM
MIGRATING on one host and INCOMING or POSTCOPY on another is a migration *in flight* (started by
this manager before a restart, or by someone else); the manager adopts it and waits for its end
instead of starting another. An INCOMING VM with no source anywhere is *orphaned* (a move whose
source gave up, or a manager killed between prepare-incoming and migrate).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from consolidator.domain.types import VmSpec
from consolidator.manager.client import AgentError
from consolidator.manager.engine import Engine
from consolidator.protocol.schemas import VmRunState, VmView

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class InFlight:
    vm: str
    src: str
    dst: str
    postcopy: bool  # the guest already runs at the destination


@dataclass
class Inventory:
    """One reading of the cluster. ``answered`` lists the hosts whose engine answered."""

    answered: set[str] = field(default_factory=set)
    placement: dict[str, str] = field(default_factory=dict)
    specs: dict[str, VmSpec] = field(default_factory=dict)
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    orphans: dict[str, str] = field(default_factory=dict)  # vm -> host holding an incoming VM nobody sends
    # (safe to remove only when its source answered: ``placement`` has it, or it is nowhere else)

    def vm_names(self) -> list[str]:
        return sorted(self.placement)


def inventory_of(views: dict[str, list[VmView]]) -> Inventory:
    """The inventory of the hosts that answered (host -> its VMs)."""
    inv = Inventory(answered=set(views))
    seen: dict[str, dict[str, VmView]] = {}
    for host in sorted(views):
        for vm in views[host]:
            seen.setdefault(vm.name, {})[host] = vm
    for name, where in seen.items():
        _classify(inv, name, where)
    return inv


def _classify(inv: Inventory, name: str, where: dict[str, VmView]) -> None:
    """Place one VM seen on the hosts ``where`` (host -> view), and find its move if one runs."""
    by_state: dict[VmRunState, str] = {}
    for host, view in sorted(where.items()):
        by_state.setdefault(view.state, host)
    dst = by_state.get(VmRunState.POSTCOPY) or by_state.get(VmRunState.INCOMING)
    # a postcopy source is paused ("postmigrate": STOPPED) while it still serves pages
    sources = [VmRunState.MIGRATING] + ([VmRunState.STOPPED, VmRunState.PAUSED] if VmRunState.POSTCOPY in by_state
                                       else [])
    src = next((by_state[s] for s in sources if s in by_state and by_state[s] != dst), None)
    placed = src or next((by_state[s] for s in (VmRunState.RUNNING, VmRunState.STARTING, VmRunState.PAUSED)
                          if s in by_state), None)
    if placed is None and VmRunState.POSTCOPY in by_state:
        placed = by_state[VmRunState.POSTCOPY]  # runs there; its source no longer answers
        log.warning("VM %s runs in postcopy on %s with no source answering", name, placed)
    if placed is None:
        if dst is not None:
            inv.orphans[name] = dst
        return
    view = where[placed]
    inv.placement[name] = placed
    inv.specs[name] = VmSpec(name, vcpus=view.config.vcpus, mem_mib=view.config.mem_mib)
    if src is not None and dst is not None:
        inv.in_flight[name] = InFlight(name, src, dst, VmRunState.POSTCOPY in by_state)
    elif dst is not None and dst != placed:
        inv.orphans[name] = dst  # its source runs it and sends nothing


async def discover(engines: dict[str, Engine]) -> Inventory:
    """Ask every engine for its VMs at once; hosts that do not answer are left out of ``answered``."""
    hosts = list(engines)
    answers = await asyncio.gather(*(engines[h].list_vms() for h in hosts), return_exceptions=True)
    views: dict[str, list[VmView]] = {}
    for host, answer in zip(hosts, answers, strict=True):
        if isinstance(answer, AgentError):
            log.debug("no VM list from %s: %s", host, answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            views[host] = answer
    return inventory_of(views)
