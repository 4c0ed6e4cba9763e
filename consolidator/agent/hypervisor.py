"""The contract between the agent's HTTP API (agent/api) and the VM driver (agent/qemu).

The driver owns QEMU processes and their QMP sockets; the API owns authentication, validation,
host power state and the event stream. A live migration involves two drivers on two hosts:
the destination's ``prepare_incoming`` returns a URI, the source's ``migrate`` sends to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.protocol.migration import DEFAULT_OPTIONS, MigrationOptions
from consolidator.protocol.schemas import VmBody, VmConfig, VmRunState, VmStatsView, VmView


@dataclass(frozen=True, slots=True)
class VmInfo:
    name: str
    state: VmRunState
    config: VmConfig
    pid: int | None = None
    qmp_socket: str | None = None

    def view(self) -> VmView:
        return VmView(name=self.name, state=self.state, config=VmBody.from_config(self.config), pid=self.pid)


@dataclass(frozen=True, slots=True)
class MigrationRequest:
    vm: str
    dst_uri: str  # from the destination's prepare_incoming, e.g. "tcp:10.10.0.2:49152"
    method: MigrationMethod
    options: MigrationOptions = DEFAULT_OPTIONS  # bandwidth, downtime limit, timeout: as the API got them


@dataclass(frozen=True, slots=True)
class MigrationReport:
    vm: str
    method: MigrationMethod
    outcome: MigrationOutcome
    total_s: float
    downtime_s: float | None  # source STOP -> destination RESUME, where both sides were seen
    bytes_sent: int
    rounds: int
    converged: bool
    switched_to_postcopy: bool = False
    detail: str = ""
    timeline: dict[str, float] = field(default_factory=dict)  # wall-clock marks, e.g. "stop", "resume"
    normal_bytes: int = 0  # non-zero page bytes sent (resends count again); postcopy: ≈ touched RAM
    postcopy_requests: int = 0  # pages the destination faulted on and requested
    postcopy_preempt: bool = False  # QEMU's postcopy-preempt channel was enabled for this move


@dataclass(frozen=True, slots=True)
class PostcopyFaults:
    """The destination's own account of a postcopy phase's remote page faults (QEMU's
    ``postcopy-blocktime`` capability, read from its query-migrate once the move completed)."""

    blocktime_s: float  # time during which every vCPU was blocked on a remote fault at once
    vcpu_blocktime_s: tuple[float, ...]  # per vCPU: time it was blocked on remote faults
    latency_s: float | None = None  # mean page-request latency (QEMU 10.1+ ``postcopy-latency``)
    preempt: bool = False  # the destination had postcopy-preempt enabled


@dataclass(frozen=True, slots=True)
class VmStats:
    name: str
    cpu_load: float  # fraction of one core, from cgroup/proc accounting
    dirty_bytes_per_s: float | None  # from QMP calc-dirty-rate, when measured
    mem_mib: int

    def view(self, cpu_quota: float | None = None, guest_load: float | None = None) -> VmStatsView:
        quota_load = self.cpu_load / cpu_quota if cpu_quota else None
        return VmStatsView(name=self.name, cpu_load=self.cpu_load, dirty_bytes_per_s=self.dirty_bytes_per_s,
                           mem_mib=self.mem_mib, cpu_quota=cpu_quota, quota_load=quota_load,
                           guest_load=guest_load, load_pending=False, guest_queue=None)


# hears "paused" / "resumed" with details (wall-clock marks) of an outgoing postcopy whose link broke
MigrationObserver = Callable[[str, dict[str, Any]], Awaitable[None]]


class Hypervisor(Protocol):
    """What the agent needs from a VM driver. Every method but ``incoming_marks`` is async; errors
    raise DriverError."""

    async def create_vm(self, config: VmConfig) -> VmInfo: ...

    async def prepare_incoming(self, config: VmConfig, listen_host: str) -> str: ...

    async def migrate(self, request: MigrationRequest, observer: MigrationObserver | None = None,
                      started_s: float | None = None) -> MigrationReport:
        """Send a VM away. ``observer`` hears "paused"/"resumed" of a postcopy whose link broke;
        ``started_s``: watch on a migration an earlier agent started (see ``pending_migrations``)."""
        ...

    def resume_migration(self, vm: str, dst_uri: str) -> None:
        """Source of a paused postcopy: resume it to the destination's new address (with retries)."""
        ...

    async def recover_incoming(self, vm: str, listen_host: str) -> str:
        """Destination of a paused (or hung) postcopy: listen again; returns the new URI."""
        ...

    def pending_migrations(self) -> list[tuple[MigrationRequest, float]]:
        """Outgoing migrations an earlier agent started on adopted VMs: (request, wall-clock start)."""
        ...

    async def cancel_migration(self, vm: str) -> None: ...

    def incoming_marks(self, vm: str) -> dict[str, float]:
        """Destination side, without waiting: wall-clock marks of the VM's incoming migration seen so
        far, "resume" (the guest runs here) and "completed" (every page is here); either may be absent.
        Downtime of a move = this "resume" - the source report's ``timeline["stop"]``."""
        ...

    async def destroy_vm(self, vm: str) -> None: ...

    async def list_vms(self) -> list[VmInfo]: ...

    async def vm_stats(self, vm: str) -> VmStats: ...

    async def set_load(self, vm: str, load: float, dirty_mib_s: float) -> None: ...

    async def check_pages(self, vm: str) -> int: ...

    async def adopt(self) -> list[VmInfo]: ...

    async def close(self) -> None: ...


class DriverError(Exception):
    """A VM driver operation failed; wraps the root cause (QMP error, process exit, timeout)."""


class InPostcopy(DriverError):
    """Refused: the migration is in postcopy (the guest runs at the destination, its memory split
    between both hosts); a postcopy is recovered, never cancelled."""
