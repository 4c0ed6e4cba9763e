"""The paper's scenario, scaled to fit the lab: smaller VMs, and time scaled by the same factor.

Why one factor: with the link (120 MB/s) and dirty rates unchanged, a migration's duration is
proportional to the VM's memory, so VMs of ``time_scale`` × 1 GiB migrate ``time_scale`` times faster;
scaling every other time of the scenario (load changes, tick, the averaging window through the tick,
the policy's hold time, S3 suspend/resume, the precopy timeout) by the same factor keeps the story of
the paper's Fig. 5 unchanged, only shorter. Names are lowercased: agent and namespace names must be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from consolidator.domain.errors import UserError
from consolidator.domain.types import HostSpec, VmSpec
from consolidator.policies.registry import policy_args
from consolidator.sim.scenario import Scenario

PAPER_VM_MIB = 1024
MAX_LAB_VM_MIB = 256  # two cores, several TCG guests: keep each small (DESIGN §5)


@dataclass(frozen=True, slots=True)
class LabScale:
    """How the lab shrinks a scenario. ``cpu_quota``: cores given to each VM (its "100 %")."""

    time_scale: float = 0.25
    cpu_quota: float = 0.5
    # "model": host load = VM loads (measured in the guests) + the scenario's overhead per VM;
    # "measured": host load = CPU its QEMU processes used, TCG's emulation cost included
    overhead: str = "model"
    # (host, capacity in VM-load units): a capped host, e.g. ("pm1", 0.6): the simulator serves it 0.6
    # and saturates its power there; the lab caps all its VMs together at 0.6 × cpu_quota cores
    host_caps: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.time_scale <= 1:
            raise UserError("must be in (0, 1]", field="time_scale")
        if self.vm_mem_mib > MAX_LAB_VM_MIB or self.vm_mem_mib < 32:
            raise UserError(f"gives {self.vm_mem_mib} MiB VMs; the lab allows 32..{MAX_LAB_VM_MIB} MiB "
                            f"(time_scale 0.03..0.25)", field="time_scale")
        if not 0.05 <= self.cpu_quota <= 1:
            raise UserError("must be in [0.05, 1] cores", field="cpu_quota")
        if self.overhead not in ("model", "measured"):
            raise UserError("must be 'model' or 'measured'", field="overhead")
        for host, capacity in self.host_caps:
            if not 0.05 <= capacity <= 4:
                raise UserError(f"{host}={capacity:g}: a capacity must be in [0.05, 4] VM loads", field="cap")

    def cpu_caps(self) -> dict[str, float]:
        """Cores all VMs of each capped lab host get together."""
        return {host: capacity * self.cpu_quota for host, capacity in self.host_caps}

    @property
    def vm_mem_mib(self) -> int:
        return round(PAPER_VM_MIB * self.time_scale)

    def policy_args(self, policy: str = "paper", args: Mapping[str, float] | None = None) -> dict[str, float]:
        """``args`` of ``policy`` at the lab's scale: every time parameter (``*_s``: the paper policy's
        hold, a literature policy's planning interval), given or its default, times ``time_scale``."""
        given = dict(args or {})
        full = policy_args(policy, given)
        times = {k: float(v) * self.time_scale for k, v in full.items()
                 if k.endswith("_s") and isinstance(v, int | float) and not isinstance(v, bool)}
        return {**given, **times}


@dataclass(frozen=True, slots=True)
class LabPolicy:
    """The policy of a lab run, live and simulated; ``args`` already at the lab's scale."""

    name: str = "paper"
    args: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, sc: Scenario, scale: LabScale, name: str | None = None) -> LabPolicy:
        """``name`` (default: the scenario's [policy], else the paper's) with the scenario's arguments
        for it, at ``scale``; an unknown name or argument is a UserError."""
        chosen, args = sc.policy_for(name)
        return cls(chosen, scale.policy_args(chosen, args))


def scale_scenario(base: Scenario, scale: LabScale) -> Scenario:
    """The lab version of ``base``: lowercase names, VMs of ``scale.vm_mem_mib``, every time scaled."""
    s = scale.time_scale
    if base.random_modes is not None:
        raise UserError("the lab runs scenarios with fixed load schedules (e.g. simple)", field="scenario")
    caps = dict(scale.host_caps)
    unknown = sorted(set(caps) - {h.name.lower() for h in base.hosts})
    if unknown:
        raise UserError(f"no host {unknown[0]!r} in scenario {base.name!r}", field="cap")
    hosts = tuple(_scaled_host(h, s, caps.get(h.name.lower())) for h in base.hosts)
    vms = tuple(VmSpec(v.name.lower(), v.vcpus, scale.vm_mem_mib, None, v.dirty_bytes_per_s_at_full)
                for v in base.vms)
    schedules = tuple(tuple((t * s, load) for t, load in steps) for steps in base.schedules)
    migration = dataclasses.replace(base.migration, setup_s=base.migration.setup_s * s,
                                    timeout_s=base.migration.timeout_s * s)
    return dataclasses.replace(
        base, name=f"{base.name}-lab", duration_s=base.duration_s * s, tick_s=base.tick_s * s,
        hosts=hosts, vms=vms, schedules=schedules, migration=migration,
        placement={vm.lower(): host.lower() for vm, host in base.placement.items()},
        description=f"{base.description} (lab: time and VM memory x {s:g})",
    )


def _scaled_host(h: HostSpec, s: float, capacity: float | None) -> HostSpec:
    power = dataclasses.replace(h.power, suspend_s=h.power.suspend_s * s, resume_s=h.power.resume_s * s)
    if capacity is None:
        return dataclasses.replace(h, name=h.name.lower(), power=power)
    # capacity and power saturation are one point (DESIGN §2 "Host capacity")
    return dataclasses.replace(h, name=h.name.lower(), cores=capacity,
                               power=dataclasses.replace(power, full_load_cores=capacity))


def host_names(scenario: Scenario) -> list[str]:
    return [h.name for h in scenario.hosts]


def load_at(schedule: tuple[tuple[float, float], ...], t_s: float) -> float:
    """The scheduled load at ``t_s`` (piecewise constant)."""
    load = 0.0
    for start, value in schedule:
        if start <= t_s + 1e-9:
            load = value
    return load


def hosts_by_name(scenario: Scenario) -> dict[str, HostSpec]:
    return {h.name: h for h in scenario.hosts}
