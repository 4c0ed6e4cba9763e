"""The manager's engines on a leash (issue 11 item 5): a move goes only to a host cluster.toml names, at
an address of ``[migration] networks``, on a port of ``[migration] ports``; anything else is refused
(403) before the source is asked to migrate. The agent engine runs against real in-process agents
(only their VM driver is the recording double); the libvirt engine against real libvirtd:
tests/libvirt/test_libvirt_migration.py::test_leash_refuses_before_libvirt_connects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agent_doubles import TOKEN
from service_doubles import HOSTS, Cluster

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.manager.client import AgentEndpoint, AgentError
from consolidator.manager.engine import AgentEngine
from consolidator.manager.leash import MigrationLeash, data_address
from consolidator.protocol.migration import DEFAULT_OPTIONS
from consolidator.protocol.schemas import VmBody


@pytest.mark.parametrize(("uri", "expected"), [
    ("tcp:10.0.1.5:49152", ("10.0.1.5", 49152)),
    ("tcp:[fd00::5]:49160", ("fd00::5", 49160)),
    ("tcp://10.0.1.5", ("10.0.1.5", None)),
    ("tcp://10.0.1.5:49200", ("10.0.1.5", 49200)),
    ("qemu+tls://pm1.example/system", ("pm1.example", None)),
    ("qemu+ssh://root@pm1.example/system?keyfile=/k", ("pm1.example", None)),
])
def test_data_address(uri: str, expected: tuple[str, int | None]) -> None:
    assert data_address(uri) == expected


@pytest.mark.parametrize("uri", ["unix:/tmp/x", "tcp:10.0.1.5", "exec:cat", "tcp://", "fd:3"])
def test_data_address_refuses_what_names_no_host_and_port(uri: str) -> None:
    with pytest.raises(ValueError):
        data_address(uri)


LEASH = MigrationLeash.of(["pm0", "pm1"], ["10.0.1.0/24"], (49152, 49215))


@pytest.mark.parametrize(("dst", "uri", "refusal"), [
    ("pm1", "tcp:10.0.1.11:49152", None),
    ("pm1", "tcp://10.0.1.11", None),  # port left to the destination (libvirt's range)
    ("pm9", "tcp:10.0.1.11:49152", "'pm9' is not a migration peer of pm0"),
    ("pm0", "tcp:10.0.1.10:49152", "'pm0' is not a migration peer of pm0"),  # not to itself
    ("pm1", "tcp:192.0.2.7:49152", "192.0.2.7 is outside the migration networks (10.0.1.0/24)"),
    ("pm1", "tcp:10.0.1.11:22", "port 22 is outside the migration ports 49152..49215"),
    ("pm1", "tcp:10.0.1.11:49216", "port 49216 is outside"),
    ("pm1", "tcp://pm1.example", "'pm1.example' is not an IP address"),
    ("pm1", "exec:nc 192.0.2.7 80", "not a migration address"),
])
def test_leash_table(dst: str, uri: str, refusal: str | None) -> None:
    if refusal is None:
        LEASH.check_uri("pm0", "vm0", dst, uri)
        return
    with pytest.raises(AgentError) as info:
        LEASH.check_uri("pm0", "vm0", dst, uri)
    assert info.value.status == 403 and refusal in info.value.detail


def test_no_networks_means_any_address_but_still_the_port_range() -> None:
    leash = MigrationLeash.of(["pm0", "pm1"])
    leash.check_uri("pm0", "vm0", "pm1", "tcp:198.51.100.1:49152")
    with pytest.raises(AgentError, match="port 80 is outside the migration ports 49152..49407"):
        leash.check_uri("pm0", "vm0", "pm1", "tcp:198.51.100.1:80")


def _move(cluster: Cluster, leash: MigrationLeash) -> None:
    engines = {h: AgentEngine(AgentEndpoint(h, "http://agent", TOKEN), transport=cluster.transports[h],
                              leash=leash) for h in HOSTS}

    async def go() -> None:
        await engines["pm0"].create_vm(VmBody(name="vm0", mem_mib=256, load=0.1))
        await engines["pm0"].migrate_to("vm0", engines["pm1"], MigrationMethod.POSTCOPY, DEFAULT_OPTIONS)
        for _ in range(100):  # the recording driver's move takes 0.05 s
            if "vm0" in cluster.drivers["pm1"].vms and "vm0" not in cluster.drivers["pm0"].vms:
                return
            await asyncio.sleep(0.02)

    asyncio.run(go())


@pytest.mark.parametrize(("migration", "peers", "refusal", "prepared"), [
    ({"networks": ["10.9.0.0/24"]}, None, "127.0.0.1 is outside the migration networks (10.9.0.0/24)", True),
    ({"ports": [50000, 50100]}, None, "port 49153 is outside the migration ports 50000..50100", True),
    ({}, ["pm0", "pm2"], "'pm1' is not a migration peer of pm0", False),
])
def test_agent_engine_refuses_before_the_source_migrates(tmp_path: Path, migration: dict[str, Any],
                                                         peers: list[str] | None, refusal: str, prepared: bool) -> None:
    """The target may name any listening address (a bad or compromised agent): the source is never asked
    to migrate there, and the target's prepared incoming QEMU is removed again. A host the leash does not
    name is refused before any request to it."""
    cluster = Cluster(tmp_path)
    leash = cluster.config(migration=migration).leash() if peers is None else MigrationLeash.of(peers)
    with pytest.raises(AgentError) as info:
        _move(cluster, leash)
    assert info.value.status == 403 and refusal in info.value.detail
    assert not any(name == "migrate" for d in cluster.drivers.values() for name, _ in d.calls)
    target = cluster.drivers["pm1"]
    assert any(name == "prepare_incoming" for name, _ in target.calls) is prepared
    assert "vm0" not in target.vms and "vm0" in cluster.drivers["pm0"].vms


def test_agent_engine_moves_on_the_default_leash(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    _move(cluster, cluster.config().leash())
    assert "vm0" in cluster.drivers["pm1"].vms and "vm0" not in cluster.drivers["pm0"].vms
    assert cluster.migrations() == ["vm0 pm0->tcp:127.0.0.1:49153"]


@pytest.mark.parametrize(("migration", "field"), [
    ({"networks": ["10.0.1.0/33"]}, "migration.networks"),
    ({"networks": ["pm1.example"]}, "migration.networks"),
    ({"ports": [80, 90]}, "migration.ports"),
    ({"ports": [50000, 49999]}, "migration.ports"),
])
def test_bad_leash_in_cluster_toml_is_named(tmp_path: Path, migration: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError) as info:
        Cluster(tmp_path).config(migration=migration)
    assert field in str(info.value)
