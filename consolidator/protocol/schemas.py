"""Request and response bodies of the host agent's HTTP API (they make its OpenAPI schema).

Every request model forbids unknown fields and bounds every number, so a malformed body is a
422 with a message before any handler runs. The manager's client builds and parses the same models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState, Vocabulary
from consolidator.protocol.migration import MigrationOptions

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"  # host and VM names
# Hard limits of one request; the host's own limit (max_vm_mem_mib) is checked by the agent.
MAX_MEM_MIB = 1 << 20
MAX_DIRTY_MIB_S = 100_000.0
MIGRATION_URI_PATTERN = r"^tcp:(\d{1,3}\.){3}\d{1,3}:\d{1,5}$"


class VmRunState(Vocabulary):
    """A VM as its agent reports it (JSON ``state``): run state and its side of a migration."""

    STARTING = "starting"
    RUNNING = "running"
    INCOMING = "incoming"  # destination side, waiting for or receiving a migration
    MIGRATING = "migrating"  # source side, migration in progress
    POSTCOPY = "postcopy"  # running on the destination, pages still arriving
    POSTCOPY_PAUSED = "postcopy-paused"  # link broken mid-postcopy: the guest's memory is split, recover it
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class VmConfig:
    """A VM's size, CPU quota and guest load, as a VM driver is given it."""

    name: str
    mem_mib: int = 256
    vcpus: int = 1
    cpu_quota: float = 1.0  # fraction of one host core (cgroup cpu.max); the VM's "100 %"
    load: float = 0.0  # workload generator: CPU load 0..1
    dirty_mib_s: float = 0.0  # workload generator: memory update rate at that load
    wws_mib: int | None = None  # working set the generator writes; None = most of RAM


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN and Infinity are 422s


class VmBody(_Strict):
    """A VM to create (or to receive, for prepare-incoming): size, CPU quota and guest load."""

    name: str = Field(pattern=NAME_PATTERN, description="VM name, e.g. vm0")
    mem_mib: int = Field(256, ge=16, le=MAX_MEM_MIB)
    vcpus: int = Field(1, ge=1, le=64)
    cpu_quota: float = Field(1.0, gt=0, le=64, description="fraction of one host core: the VM's 100 %")
    load: float = Field(0.0, ge=0, le=1, description="workload CPU load, 0..1 of the quota")
    dirty_mib_s: float = Field(0.0, ge=0, le=MAX_DIRTY_MIB_S)
    wws_mib: int | None = Field(None, ge=1, le=MAX_MEM_MIB)

    def to_config(self) -> VmConfig:
        return VmConfig(**self.model_dump())

    @classmethod
    def from_config(cls, config: VmConfig) -> VmBody:
        return cls(name=config.name, mem_mib=config.mem_mib, vcpus=config.vcpus,
                   cpu_quota=config.cpu_quota, load=config.load, dirty_mib_s=config.dirty_mib_s,
                   wws_mib=config.wws_mib)


class VmView(BaseModel):
    """A VM as the agent sees it."""

    name: str
    state: VmRunState
    config: VmBody
    pid: int | None = None


class IncomingView(BaseModel):
    """Where the source must send the VM's state."""

    vm: str
    uri: str


class IncomingMarksView(BaseModel):
    """Destination side: wall-clock marks (s) of the VM's incoming migration seen so far, null until seen.

    Downtime of the move = ``resume`` - the source's ``stop_wall_s`` (its ``migration_finished``
    event); across machines this needs their clocks synchronised (NTP/PTP)."""

    vm: str
    resume: float | None = Field(default=None, description="the guest started running on this host (QMP RESUME)")
    completed: float | None = Field(default=None, description="every page has arrived (QMP MIGRATION completed)")
    postcopy_blocktime_s: float | None = Field(
        default=None, description="postcopy: time every vCPU was blocked on remote page faults at once "
                                  "(QEMU postcopy-blocktime; null without a postcopy phase)")
    postcopy_vcpu_blocktime_s: list[float] | None = Field(
        default=None, description="postcopy: per vCPU, time it was blocked on remote page faults")
    postcopy_latency_s: float | None = Field(
        default=None, description="postcopy: mean page-request latency (QEMU 10.1+ postcopy-latency)")
    postcopy_preempt: bool | None = Field(default=None, description="this destination had postcopy-preempt on")


class MigrateBody(MigrationOptions):
    """Send a VM to a destination that was prepared with prepare-incoming, with these options."""

    dst_uri: str = Field(pattern=MIGRATION_URI_PATTERN, description="from the destination's incoming call")
    dst_host: str = Field(pattern=NAME_PATTERN, description="destination host name, for events")
    method: Literal["precopy", "postcopy", "hybrid"] = "postcopy"

    @classmethod
    def of(cls, dst_uri: str, dst_host: str, method: MigrationMethod, options: MigrationOptions) -> MigrateBody:
        return cls(dst_uri=dst_uri, dst_host=dst_host, method=method.value,  # type: ignore[arg-type]
                   **options.model_dump())

    @property
    def migration_method(self) -> MigrationMethod:
        return MigrationMethod(self.method)


class ResumeBody(_Strict):
    """Source of a paused postcopy: where the destination listens again (its recover call's ``uri``)."""

    dst_uri: str = Field(pattern=MIGRATION_URI_PATTERN)
    dst_host: str = Field(pattern=NAME_PATTERN)


class MigrationAccepted(BaseModel):
    vm: str
    src_host: str
    dst_host: str
    method: MigrationMethod


class LoadBody(_Strict):
    """The guest workload's CPU load (of its quota) and memory update rate at that load."""

    load: float = Field(ge=0, le=1)
    dirty_mib_s: float = Field(ge=0, le=MAX_DIRTY_MIB_S)


class GuestQueueView(BaseModel):
    """The workload generator's task queue (cumulative since the guest started; it travels with the VM):
    docs/qemu.md. Times are seconds of the VM's CPU (its quota = 1 s per s) or of wall clock (delays)."""

    tasks: int = Field(description="tasks issued (Poisson arrivals)")
    done: int
    queued: int
    dropped: int = Field(description="arrivals that found the queue full (0 when work-conserving held)")
    busy_s: float = Field(description="work served, seconds of the VM's CPU")
    backlog_s: float = Field(description="work waiting now, seconds of the VM's CPU")
    delay_sum_s: float = Field(description="sum over finished tasks of completion - arrival - own work")
    delay_max_s: float
    delay_hist: dict[int, int] = Field(description="finished tasks per delay bin: bin 0 < 1 ms, bin k in "
                                                   "[2^((k-1)/4), 2^(k/4)) ms")
    uptime_s: float


class VmStatsView(BaseModel):
    """A VM's usage: host-measured CPU (cores and share of its quota) and the guest's own busy share."""

    name: str
    cpu_load: float = Field(description="cores used by the VM's QEMU process since the last call")
    dirty_bytes_per_s: float | None
    mem_mib: int
    cpu_quota: float | None = Field(None, description="the VM's cgroup quota, cores: its '100 %'")
    quota_load: float | None = Field(None, description="cpu_load / cpu_quota")
    guest_load: float | None = Field(None, description="busy share seen inside the guest since the last call")
    load_pending: bool = Field(False, description="emulated host: no guest reading yet (first one on this "
                                                  "host); leave this VM out of this period's samples")
    guest_queue: GuestQueueView | None = Field(
        default=None, description="emulated host: the guest generator's task queue at this reading")

    @property
    def lab_load(self) -> float:
        """The VM's load in lab units (its quota = one core): the guest's view, else the host's."""
        if self.guest_load is not None:
            return self.guest_load
        return self.quota_load if self.quota_load is not None else self.cpu_load


class HostStatsView(BaseModel):
    """A host's usage now: CPU in cores, memory in MiB, watts (modelled for an emulated host)."""

    host: str
    t_wall_s: float
    power_state: PowerState
    emulated: bool
    cores: float
    cpu_load: float = Field(description="cores busy: /proc/stat on a real host; on an emulated host the sum "
                                        "of its VMs' loads, each VM's quota counting as one core")
    proc_cpu_load: float = Field(description="cores busy on the machine per /proc/stat")
    mem_total_mib: float
    mem_used_mib: float
    watts: float | None = Field(description="modelled watts of an emulated host; None on a real one")
    vms: list[VmStatsView]


class CheckView(BaseModel):
    vm: str
    bad_pages: int


class PowerView(BaseModel):
    host: str
    power_state: PowerState


class EventKind(Vocabulary):
    """What an agent's event tells (JSON ``kind``)."""

    MIGRATION_STARTED = "migration_started"
    MIGRATION_FINISHED = "migration_finished"
    MIGRATION_PAUSED = "migration_paused"
    MIGRATION_RESUMED = "migration_resumed"
    HOST_POWER = "host_power"


class EventView(BaseModel):
    """One migration or host event; ``seq`` grows by one per event on this agent."""

    seq: int
    t_wall_s: float
    kind: EventKind
    host: str
    vm: str | None = None
    src: str | None = None
    dst: str | None = None
    method: MigrationMethod | None = None
    outcome: MigrationOutcome | None = None
    start_wall_s: float | None = None
    stop_wall_s: float | None = Field(default=None, description="migration_finished: wall clock of the "
                                                                "source's QMP STOP (the guest paused there)")
    bytes_sent: int = 0
    downtime_s: float | None = None
    rounds: int = 0
    converged: bool | None = None
    switched_to_postcopy: bool | None = None
    paused_s: float | None = Field(default=None, description="migration_resumed: how long it was paused; "
                                                             "migration_finished: all pauses together")
    recoveries: int = Field(0, description="postcopy pauses recovered during this migration")
    postcopy_requests: int = Field(default=0, description="migration_finished: pages the destination "
                                                           "faulted on and requested")
    postcopy_preempt: bool | None = Field(default=None, description="migration_finished: the move ran with "
                                                                    "QEMU's postcopy-preempt channel")
    power_state: PowerState | None = None
    detail: str = ""


class EventsView(BaseModel):
    events: list[EventView]
    next_seq: int = Field(description="pass as ?after= to get only newer events")


class ErrorView(BaseModel):
    detail: str
