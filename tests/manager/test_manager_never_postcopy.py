"""``never_postcopy`` on the manager's way out (issue 11 item 2): the rules gate sends such a VM by
precopy (every policy: tests/unit/test_never_postcopy_every_policy.py); here, that precopy must not
switch to postcopy at its time-out when cluster.toml says ``on_timeout = "postcopy"``. Real
in-process agents; only their VM driver is the recording double (it records each migrate request)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service_doubles import Cluster

from consolidator.agent.hypervisor import MigrationRequest
from consolidator.domain.events import Event
from consolidator.domain.types import MigrationMethod
from consolidator.manager.cluster import RemoteCluster
from consolidator.protocol.migration import MigrationOptions, OnTimeout
from consolidator.protocol.schemas import VmBody


def test_never_postcopy_vm_never_switches_at_its_timeout(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    engines = cluster.engines()
    events: list[Event] = []

    async def go() -> None:
        remote = RemoteCluster(engines, events.append, 0.0, options=MigrationOptions(on_timeout=OnTimeout.POSTCOPY),
                               never_postcopy=frozenset({"db"}))
        for vm in ("db", "web"):
            await engines["pm0"].create_vm(VmBody(name=vm, mem_mib=256, load=0.1))  # type: ignore[attr-defined]
        remote.start_migration("db", "pm0", "pm1", MigrationMethod.PRECOPY)
        remote.start_migration("web", "pm0", "pm1", MigrationMethod.PRECOPY)
        await remote.drain()

    asyncio.run(go())
    requests = {args[0].vm: args[0] for d in cluster.drivers.values() for name, args in d.calls if name == "migrate"}
    assert isinstance(requests["db"], MigrationRequest) and isinstance(requests["web"], MigrationRequest)
    assert requests["db"].options.on_timeout is OnTimeout.CANCEL and requests["db"].method is MigrationMethod.PRECOPY
    assert requests["web"].options.on_timeout is OnTimeout.POSTCOPY  # the others keep cluster.toml's choice
