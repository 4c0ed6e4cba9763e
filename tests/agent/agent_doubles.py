"""Test double of the VM driver, for the API's security and validation tests only.

It is NOT the product: it starts no QEMU. It exists so the HTTP layer's checks (auth, validation,
state rules) run in milliseconds and can assert that a refused request reached no driver method.
The real driver (``consolidator.agent.qemu``) is exercised by the tests marked ``qemu``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from consolidator.agent.api.config import parse_config
from consolidator.agent.host import HostAgent
from consolidator.agent.hypervisor import DriverError, Hypervisor, MigrationReport, MigrationRequest, VmInfo, VmStats
from consolidator.domain.types import MigrationOutcome
from consolidator.protocol.schemas import VmConfig, VmRunState


class RecordingHypervisor:
    """Keeps VMs in a dict and records every call as (method, args).

    Doubles that share one ``fabric`` dict hand a migrated VM over: the destination's incoming VM
    becomes running when the source's migration completes. Like the QEMU driver, the source reports
    no downtime, only its STOP mark (``timeline["stop"]``); the destination keeps its RESUME mark
    (``pause_s`` later) for ``incoming_marks``.
    """

    def __init__(self, migrate_s: float = 0.05, fabric: dict[str, RecordingHypervisor] | None = None,
                 port: int = 49152, pause_s: float = 0.02) -> None:
        self.fabric = fabric if fabric is not None else {}
        self.port = port
        self.vms: dict[str, VmInfo] = {}
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.migrate_s = migrate_s
        self.pause_s = pause_s
        self.marks: dict[str, dict[str, float]] = {}  # destination side: vm -> "resume", "completed"

    def mutating_calls(self) -> list[str]:
        readonly = {"list_vms", "vm_stats", "adopt", "close", "check_pages", "incoming_marks", "pending_migrations"}
        return [name for name, _ in self.calls if name not in readonly]

    async def create_vm(self, config: VmConfig) -> VmInfo:
        self.calls.append(("create_vm", (config,)))
        info = VmInfo(name=config.name, state=VmRunState.RUNNING, config=config, pid=4242)
        self.vms[config.name] = info
        return info

    async def prepare_incoming(self, config: VmConfig, listen_host: str) -> str:
        self.calls.append(("prepare_incoming", (config, listen_host)))
        self.vms[config.name] = VmInfo(name=config.name, state=VmRunState.INCOMING, config=config)
        self.marks[config.name] = {}
        uri = f"tcp:{listen_host}:{self.port}"
        self.fabric[uri] = self
        return uri

    async def migrate(self, request: MigrationRequest, observer: object = None,
                      started_s: float | None = None) -> MigrationReport:
        self.calls.append(("migrate", (request,)))
        start = time.time()
        await asyncio.sleep(self.migrate_s)
        info = self.vms.pop(request.vm)
        stop = time.time()
        dst = self.fabric.get(request.dst_uri)
        if dst is not None:
            dst.vms[request.vm] = VmInfo(name=request.vm, state=VmRunState.RUNNING, config=info.config)
            dst.marks[request.vm] = {"resume": stop + dst.pause_s, "completed": stop + dst.pause_s}
        return MigrationReport(vm=request.vm, method=request.method, outcome=MigrationOutcome.COMPLETED,
                               total_s=self.migrate_s, downtime_s=None, bytes_sent=1000, rounds=1,
                               converged=True, timeline={"start": start, "stop": stop, "end": time.time()})

    async def cancel_migration(self, vm: str) -> None:
        self.calls.append(("cancel_migration", (vm,)))

    def resume_migration(self, vm: str, dst_uri: str) -> None:
        self.calls.append(("resume_migration", (vm, dst_uri)))

    async def recover_incoming(self, vm: str, listen_host: str) -> str:
        self.calls.append(("recover_incoming", (vm, listen_host)))
        return f"tcp:{listen_host}:{self.port + 1}"

    def pending_migrations(self) -> list[tuple[MigrationRequest, float]]:
        return []

    def incoming_marks(self, vm: str) -> dict[str, float]:
        self.calls.append(("incoming_marks", (vm,)))
        if vm not in self.vms:
            raise DriverError(f"no VM {vm}")
        return dict(self.marks.get(vm, {}))

    async def destroy_vm(self, vm: str) -> None:
        self.calls.append(("destroy_vm", (vm,)))
        if self.vms.pop(vm, None) is None:
            raise DriverError(f"no VM {vm}")

    async def list_vms(self) -> list[VmInfo]:
        self.calls.append(("list_vms", ()))
        return list(self.vms.values())

    async def vm_stats(self, vm: str) -> VmStats:
        self.calls.append(("vm_stats", (vm,)))
        info = self.vms[vm]
        return VmStats(name=vm, cpu_load=info.config.load * info.config.cpu_quota, dirty_bytes_per_s=None,
                       mem_mib=info.config.mem_mib)

    async def set_load(self, vm: str, load: float, dirty_mib_s: float) -> None:
        self.calls.append(("set_load", (vm, load, dirty_mib_s)))
        info = self.vms[vm]
        config = dataclasses.replace(info.config, load=load, dirty_mib_s=dirty_mib_s)
        self.vms[vm] = dataclasses.replace(info, config=config)

    async def check_pages(self, vm: str) -> int:
        self.calls.append(("check_pages", (vm,)))
        return 0

    async def adopt(self) -> list[VmInfo]:
        self.calls.append(("adopt", ()))
        return list(self.vms.values())

    async def close(self) -> None:
        self.calls.append(("close", ()))


TOKEN = "s3cret-token-for-tests-0123456789"
# migration peers of every test agent: the doubles listen on loopback; pm2 has a lab-like address
PEERS = {"pm0": "127.0.0.1", "pm1": "127.0.0.1", "pm2": "10.77.0.12", "pm3": "127.0.0.1"}


def make_agent(tmp_path: Path, driver: Hypervisor, **overrides: object) -> HostAgent:
    """A HostAgent of an emulated lab host over ``driver`` (tests serve it in-process)."""
    data: dict[str, object] = {
        "name": "pm1", "token": TOKEN, "emulated": True, "state_dir": str(tmp_path), "cores": 1.0,
        "max_vm_mem_mib": 1024, "power": {"suspend_s": 0.05, "resume_s": 0.05}, "migration_peers": PEERS,
    }
    data.update(overrides)
    return HostAgent(parse_config(data, "test.toml"), driver)
