"""Two real agent hosts for the live tests (a module of its own so test files import it by a unique
name): pm0 and pm1 in namespaces on a 120 MB/s bridge, agents (re)started by pid; the ``lab``
fixture is in conftest.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consolidator.agent.qemu import launch
from consolidator.experiments.lab.agents import (
    AgentSpec,
    start_agent,
    stop_agent,
    wait_ready,
    write_config,
    write_token,
)
from consolidator.experiments.lab.network import LabNetwork
from consolidator.manager.client import AgentClient
from consolidator.protocol.schemas import EventKind, MigrateBody, VmBody

VM = VmBody(name="vm0", mem_mib=256, cpu_quota=0.5, load=0.5, dirty_mib_s=20)


class Lab:
    """Two agent hosts, pm0 and pm1, in namespaces on a 120 MB/s bridge; agents (re)started by pid."""

    def __init__(self, root: Path, net: LabNetwork) -> None:
        self.root, self.net = root, net
        token = root / "token"
        write_token(token)
        port = 20000 + os.getpid() % 20000
        self.specs = {h.host: AgentSpec(h.host, "127.0.0.1", port + i, root / h.host, token, netns=h.netns,
                                        migration_host=h.address, suspend_s=0.5, resume_s=0.5,
                                        peers={p.host: p.address for p in net.hosts if p is not h})
                      for i, h in enumerate(net.hosts)}
        self.pids: dict[str, int] = {}

    async def start(self, host: str) -> None:
        spec = self.specs[host]
        config = write_config(spec, self.root / f"{host}.toml")
        self.pids[host] = start_agent(spec, config, self.root / f"{host}.log")
        await wait_ready(spec, self.pids[host], timeout_s=60)

    def stop(self, host: str) -> None:
        stop_agent(self.pids.pop(host))

    def client(self, host: str) -> AgentClient:
        return AgentClient(self.specs[host].endpoint(), timeout_s=120)

    def close(self) -> None:
        for host in list(self.pids):
            self.stop(host)
        for pidfile in self.root.glob("*/*/qemu.pid"):
            pid = launch.read_pid(launch.VmPaths(pidfile.parent))
            if pid is not None and launch.is_qemu(pid):
                launch.kill(pid, signal.SIGKILL)
        self.net.teardown()


def live_lab() -> Iterator[Lab]:
    reason = launch.why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    root = Path(f"/tmp/ca-{os.getpid()}")  # short: QMP unix socket paths must stay under 108 bytes
    shutil.rmtree(root, ignore_errors=True)
    net = LabNetwork.plan(["pm0", "pm1"], 120e6, prefix=f"ct{os.getpid() % 10000}")
    net.setup()
    lab = Lab(root, net)
    try:
        yield lab
    finally:
        lab.close()
        shutil.rmtree(root, ignore_errors=True)


async def finished_event(client: AgentClient, after: int, timeout_s: float = 120) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        batch = await client.events(after, timeout_s=5)
        for event in batch.events:
            if event.kind is EventKind.MIGRATION_FINISHED:
                return event.model_dump(mode="json")
        after = batch.next_seq - 1
    raise AssertionError("no migration_finished event")




@dataclass(frozen=True)
class Move:
    """A migration started by ``start_move``: both clients, the source's last event number before it,
    the destination's URI, and the wall time the migrate call was made."""

    src: AgentClient
    dst: AgentClient
    before: int
    uri: str
    started_wall_s: float


async def start_move(lab: Lab, body: VmBody = VM, **migrate: Any) -> Move:
    """Both agents up, ``body`` booted on pm0 and sent to pm1 (``migrate``: MigrateBody's fields)."""
    await lab.start("pm0")
    await lab.start("pm1")
    src, dst = lab.client("pm0"), lab.client("pm1")
    await src.create_vm(body)
    before = (await src.events(0)).next_seq - 1
    uri = await dst.prepare_incoming(body)
    started = time.time()
    await src.migrate(body.name, MigrateBody(dst_uri=uri, dst_host="pm1", **migrate))
    return Move(src, dst, before, uri, started)
