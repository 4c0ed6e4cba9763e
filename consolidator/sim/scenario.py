"""Scenario files (TOML): the cluster, the VMs, their loads and the model parameters, validated.

A bad file gives one UserError naming the file and the field (``hosts[2].cores: must be > 0``).
Shipped scenarios live in ``consolidator/scenarios/``; ``load_scenario("simple")`` finds them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import parse_toml, schema_error
from consolidator.domain.types import HostSpec, PowerProfile, Role, VmSpec
from consolidator.models.migration import DirtyModel, MigrationParams, OnTimeoutPolicy
from consolidator.policies.registry import policy_args
from consolidator.sim.backlog import Accounting, GuestModel
from consolidator.sim.workload import RandomModes, StepLoads, TraceLoads

NonNeg = Annotated[float, Field(ge=0)]
Pos = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.{}-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VmTypeIn(_Strict):
    vcpu_speed: Pos  # load of the VM at 100 % (its MIPS over the scenario's unit)
    mem_mib: Annotated[int, Field(gt=0)]


class PlanetLabIn(_Strict):
    """VMs and loads from a PlanetLab day (Beloglazov & Buyya's traces): one VM per trace file (name
    order), VM i of n of type ``i // ceil(n / len(vm_types))`` (CloudSim's examples), load = the trace's
    CPU share × the type's speed, one value per ``interval_s``."""

    kind: Literal["planetlab"]
    day: str  # a day folder name under ``traces`` (default: as `consolidator planetlab` finds it) or a path
    traces: str | None = None
    interval_s: Pos = 300.0
    vm_types: list[VmTypeIn] = Field(default_factory=lambda: [  # CloudSim: 2500/2000/1000/500 MIPS, 1000 = 1.0
        VmTypeIn(vcpu_speed=2.5, mem_mib=870), VmTypeIn(vcpu_speed=2.0, mem_mib=1740),
        VmTypeIn(vcpu_speed=1.0, mem_mib=1740), VmTypeIn(vcpu_speed=0.5, mem_mib=613)], min_length=1)
    vms: Annotated[int, Field(ge=1, le=10_000_000)] | None = None  # more VMs than files reuse the files in turn
    dirty_mb_s_at_full: NonNeg = 200.0
    placement: Literal["pabfd", "spread"] = "pabfd"  # CloudSim's PABFD at creation, or VM i on host i mod H


class PowerIn(_Strict):
    idle_watts: NonNeg = 53.0
    max_watts: NonNeg = 100.0
    suspended_watts: NonNeg = 7.0
    off_watts: NonNeg = 6.0
    suspend_s: NonNeg = 5.0
    resume_s: NonNeg = 5.0
    transition_watts: NonNeg | None = None
    migration_watts: NonNeg = 3.0
    dirty_tracking_watts: NonNeg = 20.0
    table_watts: list[NonNeg] | None = Field(default=None, min_length=11, max_length=11)
    # Load at which the power curve saturates. Default: the host's ``cores``, where it stops serving
    # (DESIGN §2 "Host capacity"). Another value is a sensitivity reading, not a model of a real host.
    full_load_cores: Pos | None = None


class HostIn(_Strict):
    name: Name
    role: Literal["warehouse", "server"]
    count: Annotated[int, Field(ge=1, le=1_000_000)] = 1  # >1: name is a template with {i}
    start: Annotated[int, Field(ge=0)] = 0  # first {i}
    # Capacity: the CPU load the host serves, in the VMs' load unit, and where its power curve saturates.
    # Paper profile: the host's "100 %" = 1.0 (DESIGN §2 "Host capacity").
    cores: Pos = 1.0
    core_speed: Pos = 1.0  # load one core serves: a vCPU gets no more (CloudSim's per-core MIPS cap)
    mem_mib: Annotated[int, Field(gt=0)] = 16384
    nic_mb_s: Pos = 120.0
    power: PowerIn = PowerIn()


class VmIn(_Strict):
    name: Name
    host: Name | None = None  # initial host; default: the first Warehouse node
    count: Annotated[int, Field(ge=1, le=10_000_000)] = 1
    start: Annotated[int, Field(ge=0)] = 0
    vcpus: Annotated[int, Field(ge=1, le=1024)] = 1
    mem_mib: Annotated[int, Field(gt=0)] = 1024
    wws_mib: Annotated[int, Field(gt=0)] | None = None
    dirty_mb_s_at_full: NonNeg = 200.0
    vcpu_speed: Pos = 1.0  # load of one vCPU at 100 %
    load: list[tuple[NonNeg, NonNeg]] = Field(default_factory=list)  # [[t_s, load], ...]

    @model_validator(mode="after")
    def _loads(self) -> VmIn:
        for t, load in self.load:
            if load > self.vcpus * self.vcpu_speed:
                raise ValueError(f"load {load} at t={t} exceeds the VM's {self.vcpus} vCPU(s)")
        return self


class RandomIn(_Strict):
    kind: Literal["random-modes"] = "random-modes"
    p_active: Annotated[float, Field(ge=0, le=1)] = 0.75
    switch_s: tuple[Pos, Pos] = (30.0, 60.0)
    active: tuple[NonNeg, NonNeg] = (0.7, 1.0)
    idle: tuple[NonNeg, NonNeg] = (0.0, 0.3)


_MP = MigrationParams()  # the model's calibrated defaults (docs/calibration.md)


class MigrationIn(_Strict):
    bandwidth_mb_s: Pos = _MP.bandwidth_bytes_per_s / 1e6
    link_efficiency: Annotated[float, Field(gt=0, le=1)] = _MP.link_efficiency
    downtime_limit_s: NonNeg = _MP.downtime_limit_s
    setup_s: NonNeg = _MP.setup_s
    switch_downtime_s: NonNeg = _MP.switch_downtime_s
    timeout_s: Pos = _MP.timeout_s
    on_timeout: Literal["cancel", "postcopy"] = "cancel"
    hybrid_rounds: Annotated[int, Field(ge=1)] = _MP.hybrid_rounds
    postcopy_fault_s: NonNeg = _MP.postcopy_fault_s
    dirty_model: Literal["uniform", "linear"] = _MP.dirty_model.value
    shared_link_mb_s: Pos | None = None  # a cap on all concurrent migrations together


class GuestsIn(_Strict):
    accounting: Literal["work-conserving", "lost-cpu"] = "work-conserving"
    task_mean_s: NonNeg = GuestModel.task_mean_s
    drain_limit_s: NonNeg = GuestModel.drain_limit_s


class PolicyIn(_Strict):
    """The scenario's own policy (used when a command is given none): a registered name and its arguments."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, float] = Field(default_factory=dict)


class ScenarioIn(_Strict):
    name: Name
    description: str = ""
    duration_s: Pos
    tick_s: Pos = 1.0
    seed: int = 0
    overhead_per_vm_cores: NonNeg = 0.05
    max_moves_per_host: Annotated[int, Field(ge=1)] | None = None  # VM Controller: concurrent moves per host
    hosts: list[HostIn] = Field(min_length=1)
    vms: list[VmIn] = Field(default_factory=list)  # none with a planetlab workload: the traces give them
    workload: Annotated[RandomIn | PlanetLabIn, Field(discriminator="kind")] | None = None
    migration: MigrationIn = MigrationIn()
    guests: GuestsIn = GuestsIn()
    policy: PolicyIn | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    tick_s: float
    seed: int
    hosts: tuple[HostSpec, ...]
    vms: tuple[VmSpec, ...]
    placement: dict[str, str]
    schedules: tuple[tuple[tuple[float, float], ...], ...]
    random_modes: RandomModes | None
    overhead_per_vm_cores: float
    migration: MigrationParams
    shared_link_bytes_per_s: float | None
    max_moves_per_host: int | None = None
    guests: GuestModel = GuestModel()
    source: str = "<scenario>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    traces: TraceLoads | None = None
    policy: str | None = None  # the file's [policy]: what runs when a command names none
    policy_args: tuple[tuple[str, float], ...] = ()

    def policy_for(self, name: str | None) -> tuple[str, dict[str, float]]:
        """The policy to run and its arguments: ``name`` (with the file's arguments when the file names
        the same policy), else the file's policy, else the paper's."""
        chosen = name or self.policy or "paper"
        return chosen, dict(self.policy_args) if chosen == self.policy else {}

    def loads(self, seed: int | None = None) -> StepLoads | TraceLoads:
        """The load table for one run; the random generator draws from ``seed`` (default: the file's)."""
        if self.traces is not None:
            return self.traces.fresh()
        if self.random_modes is None:
            return StepLoads.from_schedules(self.schedules)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return self.random_modes.generate(len(self.vms), self.duration_s, rng)


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("consolidator.scenarios").iterdir()
                  if p.name.endswith(".toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in builtin_names():
        text = resources.files("consolidator.scenarios").joinpath(f"{name_or_path}.toml").read_bytes()
        return parse_scenario(text, f"{name_or_path} (built-in)")
    if not path.is_file():
        raise UserError("no such file (built-in scenarios: " + ", ".join(builtin_names()) + ")",
                        source=str(name_or_path))
    return parse_scenario(path.read_bytes(), str(path))


def parse_scenario(data: bytes, source: str) -> Scenario:
    if not data.strip():
        raise UserError("file is empty", source=source)
    return scenario_from_dict(parse_toml(data, source, "a scenario"), source)


def scenario_from_dict(raw: dict[str, Any], source: str) -> Scenario:
    """A scenario from a parsed TOML table (e.g. a built-in one's ``raw`` with fields replaced)."""
    try:
        model = ScenarioIn.model_validate(raw)
    except ValidationError as exc:
        raise schema_error(exc.errors(), source) from None
    return _build(model, source, raw)


def _expand(name: str, count: int, i: int) -> str:
    if "{i}" in name:
        return name.replace("{i}", str(i))
    return name if count == 1 else f"{name}{i}"


def _build(m: ScenarioIn, source: str, raw: dict[str, Any]) -> Scenario:
    hosts: list[HostSpec] = []
    for h in m.hosts:
        profile = PowerProfile(**{**h.power.model_dump(), "table_watts": tuple(h.power.table_watts)
                                  if h.power.table_watts else None,
                                  "full_load_cores": h.power.full_load_cores or h.cores})
        for i in range(h.count):
            hosts.append(HostSpec(_expand(h.name, h.count, h.start + i), Role(h.role), h.cores, h.mem_mib,
                                  h.nic_mb_s * 1e6, profile, h.core_speed))
    _unique([h.name for h in hosts], "hosts", source)
    by_name = {h.name: h for h in hosts}
    warehouses = [h.name for h in hosts if h.role is Role.WAREHOUSE]
    vms: list[VmSpec] = []
    placement: dict[str, str] = {}
    schedules: list[tuple[tuple[float, float], ...]] = []
    traces = None
    if isinstance(m.workload, PlanetLabIn):
        from consolidator.sim import planetlab

        if m.vms:
            raise UserError("a planetlab workload makes its own VMs: leave [[vms]] out", source=source, field="vms")
        generated, placement, table = planetlab.build(m.workload, hosts, source)
        vms.extend(generated)
        traces = TraceLoads(table.fraction, table.interval_s, table.row, table.size)
        schedules = [()] * len(vms)
    elif not m.vms:
        raise UserError("at least one VM is needed", source=source, field="vms")
    for j, v in enumerate(m.vms):
        where = v.host or (warehouses[0] if warehouses else hosts[0].name)
        if where not in by_name:
            raise UserError(f"unknown host {where!r}", source=source, field=f"vms[{j}].host")
        if all(v.mem_mib > h.mem_mib for h in hosts):
            raise UserError(f"{v.mem_mib} MiB is larger than every host", source=source,
                            field=f"vms[{j}].mem_mib")
        if v.vcpus > max(h.cores for h in hosts):
            raise UserError(f"{v.vcpus} vCPUs exceed every host's cores", source=source, field=f"vms[{j}].vcpus")
        if not v.load and m.workload is None:
            raise UserError("needs a load schedule ([[t_s, load], ...]) or a [workload] section",
                            source=source, field=f"vms[{j}].load")
        for i in range(v.count):
            spec = VmSpec(_expand(v.name, v.count, v.start + i), v.vcpus, v.mem_mib, v.wws_mib,
                          v.dirty_mb_s_at_full * 1e6, v.vcpu_speed)
            vms.append(spec)
            placement[spec.name] = where
            schedules.append(tuple(sorted(v.load)))
    _unique([v.name for v in vms], "vms", source)
    mig = m.migration
    params = MigrationParams(
        bandwidth_bytes_per_s=mig.bandwidth_mb_s * 1e6, link_efficiency=mig.link_efficiency,
        dirty_model=DirtyModel(mig.dirty_model), downtime_limit_s=mig.downtime_limit_s,
        setup_s=mig.setup_s, switch_downtime_s=mig.switch_downtime_s, timeout_s=mig.timeout_s,
        on_timeout=OnTimeoutPolicy(mig.on_timeout), hybrid_rounds=mig.hybrid_rounds,
        postcopy_fault_s=mig.postcopy_fault_s,
    )
    rm = m.workload
    random_modes = RandomModes(rm.p_active, rm.switch_s, rm.active, rm.idle) if isinstance(rm, RandomIn) else None
    return Scenario(
        name=m.name, description=m.description, duration_s=m.duration_s, tick_s=m.tick_s, seed=m.seed,
        hosts=tuple(hosts), vms=tuple(vms), placement=placement, schedules=tuple(schedules),
        random_modes=random_modes, overhead_per_vm_cores=m.overhead_per_vm_cores, migration=params,
        shared_link_bytes_per_s=mig.shared_link_mb_s * 1e6 if mig.shared_link_mb_s else None,
        max_moves_per_host=m.max_moves_per_host,
        guests=GuestModel(Accounting(m.guests.accounting), m.guests.task_mean_s, m.guests.drain_limit_s),
        source=source, raw=raw, traces=traces, **_policy(m.policy, source),
    )


def _policy(policy: PolicyIn | None, source: str) -> dict[str, Any]:
    """The file's [policy], checked against the registry (nothing is built)."""
    if policy is None:
        return {}
    try:
        policy_args(policy.name, policy.args)
    except UserError as exc:
        raise UserError(exc.message, source=source, field=exc.field) from None
    return {"policy": policy.name, "policy_args": tuple(sorted(policy.args.items()))}


def _unique(names: list[str], what: str, source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"duplicate name {name!r}", source=source, field=what)
        seen.add(name)
