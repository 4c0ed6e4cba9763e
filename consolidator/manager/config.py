"""``cluster.toml``: what the manager service manages and how, validated; every error names file and field.

Example (docs/deploy.md has the full reference)::

    mode = "recommend"                 # or "auto": apply the plans
    period_s = 1.0
    run_store = "sqlite:////var/lib/consolidator/manager.sqlite"   # or postgresql://...
    listen = "127.0.0.1:8780"          # the manager's own API, dashboard and /metrics
    api_token_file = "/etc/consolidator/manager.token"
    metrics_auth = false               # true: /metrics wants the token too

    [policy]
    name = "paper"
    args = { hold_s = 20 }

    [migration]
    method = "postcopy"                # precopy | postcopy | hybrid
    max_bandwidth_bytes_per_s = 120e6
    networks = ["10.0.1.0/24"]         # migration data only there (default: any address)
    ports = [49152, 49407]             # and to these ports (manager.leash)

    [limits]                           # operator rules: anti-thrashing and reserve
    min_hold_s = 60
    reserve_hosts = 1

    [hosts.pm0]
    role = "warehouse"
    driver = "agent"                   # the host agent; "libvirt" is the other engine
    url = "https://10.0.0.10:8700"
    token_file = "/etc/consolidator/agent.token"
    tls_ca = "/etc/consolidator/ca.pem"
    sleep = "s3"                       # or "off" (power off through the BMC; wake_s defaults to 60)
    [hosts.pm0.power]                  # meter and ordered wake methods: consolidator.power.config keys
    meter = "ipmi"
    bmc = "10.0.0.110"
    wake = ["wol", "ipmi"]
    mac = "52:54:00:12:34:56"
    password_file = "/etc/consolidator/bmc.pw"

    [vms.db1]
    pin = true                         # never moved; exclude = invisible to planning;
                                       # never_postcopy = precopy only

A new host driver adds its table class to ``HostConfig`` (discriminated by ``driver``) and its
engine factory to ``consolidator.manager.engine.ENGINES``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import read_toml, schema_error
from consolidator.domain.types import HostSpec, MigrationMethod, PowerProfile, Role, SleepMode
from consolidator.manager.client import AgentError
from consolidator.manager.leash import DEFAULT_PORTS, MigrationLeash
from consolidator.manager.mode import ManagerMode
from consolidator.policies.registry import make_policy
from consolidator.power.config import PowerConfig, power_config_from
from consolidator.power.meters import split_address
from consolidator.protocol.guards import read_token
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import NAME_PATTERN

# (suspend_s, wake_s): DESIGN §2, paper Table III
SLEEP_DEFAULTS_S = {SleepMode.S3: (5.0, 5.0), SleepMode.OFF: (20.0, 60.0)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileConfig(_Strict):
    """Watts of one host (defaults: the paper's host, DESIGN §2); the planner's and meters' model."""

    idle_watts: float = Field(53.0, ge=0)
    max_watts: float = Field(100.0, ge=0)
    suspended_watts: float = Field(7.0, ge=0)
    off_watts: float = Field(6.0, ge=0)
    full_load_cores: float | None = Field(1.0, gt=0)
    table_watts: list[float] | None = Field(None, min_length=11, max_length=11,
                                            description="SPECpower-style W at 0, 10, ..., 100 % load (overrides "
                                                        "the linear idle..max model)")


class _HostBase(_Strict):
    role: Role = Role.SERVER
    cores: float = Field(4.0, gt=0, le=1024)
    core_speed: float = Field(1.0, gt=0, le=1024, description="load one physical core serves (a vCPU gets no "
                                                             "more): the literature planners' per-core speed")
    mem_mib: int = Field(16384, gt=0)
    sleep: SleepMode = SleepMode.S3
    suspend_s: float | None = Field(None, ge=0, le=3600)
    wake_s: float | None = Field(None, ge=0, le=3600, description="until the host answers again")
    profile: ProfileConfig = Field(default_factory=lambda: ProfileConfig.model_validate({}))
    power: dict[str, Any] = Field(default_factory=dict, description="meter and wake methods (power.config)")
    maintenance: bool = Field(False, description="evacuate, never wake, never target")

    @model_validator(mode="after")
    def _sleep_times(self) -> _HostBase:
        suspend, wake = SLEEP_DEFAULTS_S[self.sleep]
        object.__setattr__(self, "suspend_s", suspend if self.suspend_s is None else self.suspend_s)
        object.__setattr__(self, "wake_s", wake if self.wake_s is None else self.wake_s)
        return self


class AgentHost(_HostBase):
    """A host run by our host agent (``consolidator agent``)."""

    driver: Literal["agent"]
    url: str = Field(pattern=r"^https?://[^\s/]+(/.*)?$")
    token_file: Path
    tls_ca: Path | None = None


class LibvirtHost(_HostBase):
    """A host whose VMs libvirt runs (engine: ``consolidator.manager.engine.ENGINES["libvirt"]``)."""

    driver: Literal["libvirt"]
    uri: str = Field(min_length=1, description="libvirt connection URI, e.g. qemu+tls://pm1/system")
    peer_uri: str | None = Field(None, min_length=1, description="how the other hosts' libvirtd reach this one "
                                                                 "(peer-to-peer migration); default: uri")
    migrate_uri: str | None = Field(None, pattern=r"^(tcp|rdma)://\S+$",
                                    description="where migration data goes, e.g. tcp://10.0.1.11")
    suspend_command: list[str] = Field(default_factory=list, max_length=64,
                                       description="argv run to suspend the host (no shell); "
                                                   "empty: libvirt's virNodeSuspendForDuration")
    wake_command: list[str] = Field(default_factory=list, max_length=64,
                                    description="argv of the engine's own wake (emulated hosts); "
                                                "real hosts wake through [hosts.NAME.power]")
    migration_tls: bool = Field(False, description="VIR_MIGRATE_TLS: QEMU's migration stream in TLS")
    emulated: bool = Field(False, description="hosts sharing one machine (tests, lab): a host's load is the "
                                              "sum of its domains' instead of the machine's CPU")


HostConfig = Annotated[AgentHost | LibvirtHost, Field(discriminator="driver")]


class VmRule(_Strict):
    pin: bool = Field(False, description="never move this VM")
    exclude: bool = Field(False, description="invisible to planning (never moved, never counted as movable)")
    never_postcopy: bool = Field(False, description="precopy only, or not at all")


class PolicyConfig(_Strict):
    name: str = "paper"
    args: dict[str, float] = Field(default_factory=dict)


class MigrationConfig(MigrationOptions):
    """``[migration]``: the method of every move and its options (the agent's migrate body has the same)."""

    method: Literal["precopy", "postcopy", "hybrid"] = "postcopy"
    networks: list[str] = Field(default_factory=list, max_length=64,
                                description="migration data only to these networks (CIDR); empty: any address")
    ports: tuple[int, int] = Field(DEFAULT_PORTS, description="and only to these ports (a URI without a port: "
                                                               "the destination's choice)")

    @field_validator("networks")
    @classmethod
    def _cidrs(cls, networks: list[str]) -> list[str]:
        for net in networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (CIDR, e.g. 10.0.1.0/24)") from None
        return networks

    @field_validator("ports")
    @classmethod
    def _port_range(cls, ports: tuple[int, int]) -> tuple[int, int]:
        low, high = ports
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"ports must be [low, high] within 1024..65535, not {[low, high]}")
        return ports


class LimitsConfig(_Strict):
    """Anti-thrashing, reserve and shutdown bounds (consolidator.control.rules applies them)."""

    min_hold_s: float = Field(60.0, ge=0, description="no move of a VM sooner than this after its last")
    max_moves_per_vm_per_hour: int = Field(6, ge=0)
    max_migrations_per_host: int = Field(1, ge=1, description="concurrent, as source or destination")
    max_migrations_per_minute: int = Field(20, ge=1, description="started, whole cluster")
    move_retry_max: int = Field(3, ge=0, description="failed moves of a VM before it is left alone")
    move_backoff_s: float = Field(30.0, ge=0, description="doubles after each failure")
    wake_retry_max: int = Field(3, ge=0)
    wake_backoff_s: float = Field(60.0, ge=0)
    give_up_s: float = Field(3600.0, gt=0, description="a capped VM or host is tried again after this")
    reserve_hosts: int = Field(0, ge=0, description="empty hosts kept awake")
    drain_timeout_s: float = Field(120.0, ge=0, description="at shutdown, wait this long for migrations")
    unknown_after_misses: int = Field(3, ge=1, description="unanswered polls before a host is UNKNOWN")


class ClusterConfig(_Strict):
    mode: ManagerMode = ManagerMode.RECOMMEND
    period_s: float = Field(1.0, gt=0, le=3600)
    window_periods: int = Field(10, ge=1, le=3600)
    overhead_per_vm: float | None = Field(None, ge=0, description="load per VM instead of the host's measured")
    run_store: str = Field(min_length=1)
    journal: Path | None = Field(None, description="JSON lines of plans, mode switches, start and stop; "
                                                   "default: beside a SQLite run store")
    listen: str = "127.0.0.1:8780"
    api_token_file: Path
    metrics_auth: bool = False
    policy: PolicyConfig = Field(default_factory=lambda: PolicyConfig.model_validate({}))
    migration: MigrationConfig = Field(default_factory=lambda: MigrationConfig.model_validate({}))
    limits: LimitsConfig = Field(default_factory=lambda: LimitsConfig.model_validate({}))
    power_defaults: dict[str, Any] = Field(default_factory=dict, description="defaults of every hosts.*.power")
    hosts: dict[Annotated[str, Field(pattern=NAME_PATTERN)], HostConfig] = Field(min_length=1)
    vms: dict[str, VmRule] = Field(default_factory=dict)

    @property
    def method(self) -> MigrationMethod:
        return MigrationMethod(self.migration.method)

    def leash(self) -> MigrationLeash:
        """Where the engines may send a guest: these hosts, on ``[migration]`` networks and ports."""
        return MigrationLeash.of(self.hosts, self.migration.networks, self.migration.ports)

    def journal_path(self) -> Path:
        if self.journal is not None:
            return self.journal
        store = self.run_store.removeprefix("sqlite:///")
        if "://" in store:
            raise UserError("required when the run store is not a SQLite file", field="journal")
        return Path(store).with_suffix(".journal.jsonl")

    def listen_address(self) -> tuple[str, int]:
        return split_address(self.listen, 8780)

    def host_specs(self) -> list[HostSpec]:
        """The planner's view of the hosts: a host that powers off is metered at its off watts asleep."""
        specs = []
        for name, h in self.hosts.items():
            p = h.profile
            asleep = p.off_watts if h.sleep is SleepMode.OFF else p.suspended_watts
            profile = PowerProfile(idle_watts=p.idle_watts, max_watts=p.max_watts, suspended_watts=asleep,
                                   off_watts=p.off_watts, suspend_s=float(h.suspend_s or 0.0),
                                   resume_s=float(h.wake_s or 0.0), full_load_cores=p.full_load_cores,
                                   table_watts=tuple(p.table_watts) if p.table_watts else None)
            specs.append(HostSpec(name, h.role, cores=h.cores, mem_mib=h.mem_mib, power=profile,
                                  core_speed=h.core_speed))
        return specs


def parse_cluster_config(data: dict[str, Any], source: str) -> ClusterConfig:
    """Validate a parsed document; the first problem becomes a UserError naming its field."""
    try:
        cfg = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        tags = ("agent", "libvirt") if errors[0]["loc"][:1] == ("hosts",) else ()  # HostConfig's drivers
        raise schema_error(errors, source, skip=tags) from None
    _check_references(cfg, source)
    return cfg


def _check_references(cfg: ClusterConfig, source: str) -> None:
    """What the schema cannot see: files exist, the policy and power tables are valid."""
    read_token(cfg.api_token_file, source, "api_token_file")
    try:
        cfg.listen_address()
    except UserError as exc:
        raise UserError(exc.message, source=source, field="listen") from None
    try:
        cfg.journal_path()
    except UserError as exc:
        raise UserError(exc.message, source=source, field=exc.field) from None
    try:
        make_policy(cfg.policy.name, **cfg.policy.args)
    except UserError as exc:
        raise UserError(exc.message, source=source, field=exc.field or "policy") from None
    leash = cfg.leash()
    for name, host in cfg.hosts.items():
        if isinstance(host, LibvirtHost) and host.migrate_uri is not None:
            try:
                leash.check_address("manager", "any VM", name, host.migrate_uri)
            except AgentError as exc:
                raise UserError(exc.detail, source=source, field=f"hosts.{name}.migrate_uri") from None
        if isinstance(host, AgentHost):
            read_token(host.token_file, source, f"hosts.{name}.token_file")
            if host.tls_ca is not None and not host.tls_ca.is_file():
                raise UserError(f"no such file: {host.tls_ca}", source=source, field=f"hosts.{name}.tls_ca")
    power_config(cfg, source)


def power_config(cfg: ClusterConfig, source: str) -> PowerConfig:
    """Meters and wake methods of every host (``hosts.NAME.power`` tables, ``power_defaults`` merged)."""
    tables = {name: dict(h.power) for name, h in cfg.hosts.items()}
    return power_config_from({"defaults": dict(cfg.power_defaults), "hosts": tables}, source,
                             field_prefix=lambda host: f"hosts.{host}.power")


def load_cluster_config(path: Path) -> ClusterConfig:
    """Read and validate ``cluster.toml`` (token, CA and credential files included)."""
    return parse_cluster_config(read_toml(path, "a cluster.toml"), str(path))


def resolved_json(cfg: ClusterConfig) -> dict[str, Any]:
    """The configuration with every default filled in (``--check``); holds paths, never secrets."""
    return cfg.model_dump(mode="json")
