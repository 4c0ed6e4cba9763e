"""What the manager needs from a host driver ("engine"), and the host agent's implementation.

DESIGN §1 "Engines are ports": each host of ``cluster.toml`` is reached through the engine its
``driver`` names. The manager's pieces use only this protocol: discovery and the stats poller
(``list_vms``, ``host_stats``), RemoteCluster's ClusterPort commands (``migrate_to``,
``cancel_migration``, ``destroy_vm``, ``suspend``, ``wake``), and the event forwarder (``events``,
``incoming_marks``). The views are the agent API's typed models (``consolidator.protocol.schemas``),
the manager's one vocabulary for hosts, VMs and events; another engine (libvirt) builds the same.

Every call raises ``AgentError`` (host, what, status, detail) when the host refuses or cannot be
reached; ``status`` None means unreachable (the manager then counts the host as not answering).

A driver registers once in ``ENGINES``: ``driver name -> factory(name, host_config, leash) -> Engine``.
The leash (``manager.leash``, from cluster.toml) is where the engine may send a guest; every engine
refuses any other destination before a migration connection is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.manager.client import AgentClient, AgentEndpoint, AgentError
from consolidator.manager.config import AgentHost
from consolidator.manager.leash import MigrationLeash
from consolidator.protocol.guards import read_token
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import (
    EventsView,
    HostStatsView,
    IncomingMarksView,
    MigrateBody,
    PowerView,
    VmBody,
    VmView,
)

__all__ = ["ENGINES", "AgentEngine", "Engine", "EngineFactory", "make_engine"]


class Engine(Protocol):
    """One host as the manager drives it. Each method is one request; outcomes of long actions
    (a migration, a suspend) arrive later through ``events``."""

    host: str

    async def list_vms(self) -> list[VmView]:
        """Every VM on the host, with its run state (RUNNING, MIGRATING at a source, INCOMING or
        POSTCOPY at a destination): the manager's discovery and its restart read these."""
        ...

    async def host_stats(self) -> HostStatsView:
        """Power state, CPU and memory use of the host and of each VM, now."""
        ...

    async def migrate_to(self, vm: str, target: Engine, method: MigrationMethod,
                         options: MigrationOptions) -> None:
        """Start moving ``vm`` from this host to ``target``; returns once the move is accepted. Its
        end comes as a ``migration_finished`` event of this host."""
        ...

    async def cancel_migration(self, vm: str) -> None: ...

    async def destroy_vm(self, vm: str) -> None:
        """Remove ``vm`` from this host (used to clean up an incoming VM whose move did not complete)."""
        ...

    async def suspend(self) -> PowerView: ...

    async def wake(self) -> PowerView:
        """Wake through the host itself (an emulated host); real hosts wake by their power methods."""
        ...

    async def events(self, after: int, timeout_s: float = 0.0) -> EventsView:
        """Events with ``seq > after``, waiting up to ``timeout_s`` for one (long poll)."""
        ...

    async def incoming_marks(self, vm: str, timeout_s: float | None = None) -> IncomingMarksView:
        """Destination side: when ``vm`` resumed here (downtime = this - the source's stop mark)."""
        ...

    async def close(self) -> None: ...


class AgentEngine(AgentClient):
    """The host agent's HTTP API as an Engine: a move is prepare-incoming on the target, then migrate.
    ``leash``: where moves may go (None: anywhere the source agent's own migration_peers allow)."""

    def __init__(self, endpoint: AgentEndpoint, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None, leash: MigrationLeash | None = None) -> None:
        super().__init__(endpoint, timeout_s, transport)
        self.leash = leash

    async def migrate_to(self, vm: str, target: Engine, method: MigrationMethod,
                         options: MigrationOptions) -> None:
        if not isinstance(target, AgentClient):
            raise AgentError(self.host, f"migrate {vm}", None,
                             f"host {target.host} is not run by an agent: no migration between engines")
        if self.leash is not None:
            self.leash.check_peer(self.host, vm, target.host)
        view = next((v for v in await self.list_vms() if v.name == vm), None)
        if view is None:
            raise AgentError(self.host, f"find {vm}", 404, "not on the source")
        uri = await target.prepare_incoming(VmBody.model_validate(view.config.model_dump()))
        try:
            if self.leash is not None:  # the target named its listening address: is it on the leash?
                self.leash.check_uri(self.host, vm, target.host, uri)
            await self.migrate(vm, MigrateBody.of(uri, target.host, method, options))
        except AgentError:
            try:
                await target.destroy_vm(vm)  # the prepared incoming QEMU would block a later move
            except AgentError:
                pass
            raise


EngineFactory = Callable[[str, Any, MigrationLeash], Engine]


def _agent(name: str, host: AgentHost, leash: MigrationLeash) -> Engine:
    token = read_token(host.token_file, "cluster.toml", f"hosts.{name}.token_file")
    ca = str(host.tls_ca) if host.tls_ca is not None else None
    return AgentEngine(AgentEndpoint(name, host.url, token, ca), leash=leash)


def _libvirt(name: str, host: Any, leash: MigrationLeash) -> Engine:
    try:  # the binding is optional (pip extra "libvirt"): only a libvirt host needs it
        from consolidator.manager.libvirt.engine import engine_from_config
    except ImportError as exc:
        raise UserError(f"driver 'libvirt' needs the libvirt-python binding ({exc}); "
                        "install it with scripts/setup.d/40-libvirt.sh", field=f"hosts.{name}.driver") from exc
    return engine_from_config(name, host, leash)


ENGINES: dict[str, EngineFactory] = {"agent": _agent, "libvirt": _libvirt}


def make_engine(name: str, host: Any, leash: MigrationLeash) -> Engine:
    """The engine of one ``hosts.NAME`` table of cluster.toml (by its ``driver``); ``leash``: the
    configuration's ``ClusterConfig.leash()``."""
    factory = ENGINES.get(host.driver)
    if factory is None:
        raise UserError(f"driver {host.driver!r} is not available (known: {', '.join(sorted(ENGINES))})",
                        field=f"hosts.{name}.driver")
    return factory(name, host, leash)
