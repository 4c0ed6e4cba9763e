"""Discovery: where each VM is placed, which moves are in flight, which incoming VMs are orphaned."""

from __future__ import annotations

import pytest

from consolidator.manager.discovery import InFlight, inventory_of
from consolidator.protocol.schemas import VmBody, VmView
from consolidator.protocol.schemas import VmRunState as S


def views(**hosts: list[tuple[str, S]]) -> dict[str, list[VmView]]:
    return {h: [VmView(name=n, state=s, config=VmBody(name=n, mem_mib=256)) for n, s in vms]
            for h, vms in hosts.items()}


ROWS = [
    ("running", views(pm0=[("vm0", S.RUNNING)], pm1=[]), {"vm0": "pm0"}, {}, {}),
    ("precopy in flight", views(pm0=[("vm0", S.MIGRATING)], pm1=[("vm0", S.INCOMING)]),
     {"vm0": "pm0"}, {"vm0": InFlight("vm0", "pm0", "pm1", False)}, {}),
    ("postcopy in flight, source paused", views(pm0=[("vm0", S.STOPPED)], pm1=[("vm0", S.POSTCOPY)]),
     {"vm0": "pm0"}, {"vm0": InFlight("vm0", "pm0", "pm1", True)}, {}),
    ("postcopy in flight, source migrating", views(pm0=[("vm0", S.MIGRATING)], pm1=[("vm0", S.POSTCOPY)]),
     {"vm0": "pm0"}, {"vm0": InFlight("vm0", "pm0", "pm1", True)}, {}),
    ("incoming nobody sends", views(pm0=[("vm0", S.RUNNING)], pm1=[("vm0", S.INCOMING)]),
     {"vm0": "pm0"}, {}, {"vm0": "pm1"}),
    ("incoming, source silent", views(pm1=[("vm0", S.INCOMING)]), {}, {}, {"vm0": "pm1"}),
    ("postcopy, source silent", views(pm1=[("vm0", S.POSTCOPY)]), {"vm0": "pm1"}, {}, {}),
    ("stopped VM is not placed", views(pm0=[("vm0", S.STOPPED)]), {}, {}, {}),
]


@pytest.mark.parametrize(("seen", "placement", "in_flight", "orphans"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_inventory(seen: dict[str, list[VmView]], placement: dict[str, str], in_flight: dict[str, InFlight],
                   orphans: dict[str, str]) -> None:
    inv = inventory_of(seen)
    assert (inv.placement, inv.in_flight, inv.orphans) == (placement, in_flight, orphans)
    assert inv.answered == set(seen)
