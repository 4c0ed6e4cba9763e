"""Where a migration may listen and connect: a port from the configured range, QEMU's TLS objects,
and the destination's side of postcopy recovery (``migrate-pause`` + ``migrate-recover``).

QEMU takes ``migrate-incoming`` once: a port already in use leaves that QEMU unable to listen, so
the driver starts a fresh one and tries another port (``listen_incoming`` raises PortBusy).
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

from consolidator.agent.hypervisor import DriverError
from consolidator.agent.qemu.monitor import Monitor
from consolidator.agent.qemu.status import MigrationStatus, migration_status

log = logging.getLogger(__name__)

TLS_SERVER_ID = "mig-tls-server"
TLS_CLIENT_ID = "mig-tls-client"
PAUSE_WAIT_S = 5.0
QMP_WAIT_S = 10.0  # a destination monitor silent this long is stuck (see Monitor.execute)


class PortBusy(DriverError):
    """The chosen port is taken; this QEMU cannot listen any more (QEMU allows one migrate-incoming)."""


def pick_port(ports: tuple[int, int], taken: set[int]) -> int:
    """A random port of the range that none of this host's own listeners holds."""
    low, high = ports
    free = [p for p in range(low, high + 1) if p not in taken]
    if not free:
        raise DriverError(f"every migration port {low}..{high} is in use on this host")
    return random.choice(free)


def uri_of(info: dict[str, Any]) -> str:
    addresses = info.get("socket-address", [])
    if not addresses:
        raise DriverError("QEMU reported no listening address")
    addr = addresses[0]
    return f"tcp:{addr['host']}:{addr['port']}"


async def use_tls(mon: Monitor, tls_dir: Path | None, server: bool, hostname: str | None = None) -> None:
    """Encrypt this QEMU's migrations with x509 credentials from ``tls_dir`` (both ends verify)."""
    if tls_dir is None:
        return
    obj_id = TLS_SERVER_ID if server else TLS_CLIENT_ID
    objects = await mon.execute("qom-list", {"path": "/objects"})
    if not any(o.get("name") == obj_id for o in objects):
        await mon.execute("object-add", {"qom-type": "tls-creds-x509", "id": obj_id, "dir": str(tls_dir),
                                         "endpoint": "server" if server else "client", "verify-peer": True})
    params: dict[str, Any] = {"tls-creds": obj_id}
    if hostname is not None:
        params["tls-hostname"] = hostname  # the destination's certificate must name its address
    await mon.execute("migrate-set-parameters", params)


async def listen_incoming(mon: Monitor, host: str, port: int) -> str:
    """``migrate-incoming`` on host:port; returns the URI the source must send to."""
    try:
        await mon.execute("migrate-incoming", {"uri": f"tcp:{host}:{port}"})
    except DriverError as exc:
        if "in use" in str(exc):
            raise PortBusy(str(exc)) from exc
        raise
    return uri_of(await mon.execute("query-migrate"))


async def recover_incoming(mon: Monitor, host: str, port: int) -> str:
    """Destination of a broken postcopy: pause it if QEMU has not noticed (a hung link), then listen
    again with ``migrate-recover``; returns the new URI for the source's ``migrate`` with ``resume``."""
    status = migration_status(await mon.execute("query-migrate", timeout_s=QMP_WAIT_S))
    if status is MigrationStatus.POSTCOPY_ACTIVE:
        await mon.execute("migrate-pause", timeout_s=QMP_WAIT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PAUSE_WAIT_S
        while migration_status(await mon.execute("query-migrate", timeout_s=QMP_WAIT_S)) \
                is not MigrationStatus.POSTCOPY_PAUSED:
            if loop.time() > deadline:
                raise DriverError(f"{mon.name}: not paused {PAUSE_WAIT_S} s after migrate-pause")
            await asyncio.sleep(0.05)
    elif status is not MigrationStatus.POSTCOPY_PAUSED:
        raise DriverError(f"{mon.name}: incoming migration is {status.value!r}, not a paused postcopy")
    try:
        await mon.execute("migrate-recover", {"uri": f"tcp:{host}:{port}"}, timeout_s=QMP_WAIT_S)
    except DriverError as exc:
        if "already" not in str(exc):  # an earlier recover still listens: reuse its address
            raise
        log.info("%s: recovery already listening", mon.name)
    return uri_of(await mon.execute("query-migrate", timeout_s=QMP_WAIT_S))
