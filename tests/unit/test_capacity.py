"""Coherent host capacity: a host serves what its power curve charges (DESIGN §2 "Host capacity"), and a
guest dirties memory at the CPU it is served, not the CPU it wants."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerProfile, Role, VmSpec
from consolidator.models.migration import MigrationParams
from consolidator.sim.cluster import SimCluster
from consolidator.sim.scenario import load_scenario, parse_scenario


def _hosts(text: str) -> tuple[HostSpec, ...]:
    return parse_scenario(f'name = "t"\nduration_s = 1\n{text}\n[[vms]]\nname = "v"\nload = [[0, 0.5]]\n'
                          .encode(), "test").hosts


@pytest.mark.parametrize(
    ("host_toml", "cores", "full_load"),
    [
        ('[[hosts]]\nname = "h"\nrole = "server"', 1.0, 1.0),  # the paper's host: "100 %" = 1.0
        ('[[hosts]]\nname = "h"\nrole = "server"\ncores = 2.5', 2.5, 2.5),  # one parameter moves both
        ('[[hosts]]\nname = "h"\nrole = "server"\ncores = 4\n[hosts.power]\nfull_load_cores = 1', 4.0, 1.0),
    ],
)
def test_one_capacity_sets_service_and_power_saturation(host_toml: str, cores: float, full_load: float) -> None:
    (h,) = _hosts(host_toml)
    assert h.cores == cores
    assert h.power.full_load_cores == full_load


def test_the_shipped_scenarios_use_the_paper_host() -> None:
    for name in ("simple", "complex"):
        for h in load_scenario(name).hosts:
            assert h.cores == 1.0 and h.power.full_load_cores == 1.0


def _cluster(n_vms: int, cores: float, full_load: float | None, params: MigrationParams | None = None,
             dirty: float = 200e6) -> SimCluster:
    hosts = [HostSpec("W", Role.WAREHOUSE, cores, power=PowerProfile(full_load_cores=full_load)),
             HostSpec("S", Role.SERVER, cores, power=PowerProfile(full_load_cores=full_load))]
    vms = [VmSpec(f"v{i}", mem_mib=256, dirty_bytes_per_s_at_full=dirty) for i in range(n_vms)]
    return SimCluster(hosts, vms, {v.name: "W" for v in vms}, {}, params or MigrationParams())


@pytest.mark.parametrize(
    ("demand", "served", "watts"),
    [
        ([0.3], 0.3, 53 + 47 * 0.3),
        ([0.6, 0.3], 0.9, 53 + 47 * 0.9),
        ([0.8, 0.7], 1.0, 100.0),  # over capacity: serves 1.0 and draws 100 W, no more
        ([1.0, 1.0, 1.0], 1.0, 100.0),
    ],
)
def test_a_host_saturates_service_and_power_at_the_same_load(demand: list[float], served: float,
                                                             watts: float) -> None:
    c = _cluster(len(demand), 1.0, 1.0)
    tick = c.step(0.0, 1.0, np.array(demand))
    assert tick.host_served[0] == pytest.approx(served)
    assert tick.host_watts[0] == pytest.approx(watts)
    assert tick.vm_served.sum() == pytest.approx(served)
    # the host shares its capacity in proportion to what each VM wants
    assert tick.vm_served == pytest.approx(np.array(demand) * served / sum(demand))


def test_the_sensitivity_reading_serves_four_but_charges_one() -> None:
    c = _cluster(3, 4.0, 1.0)
    tick = c.step(0.0, 1.0, np.array([1.0, 1.0, 1.0]))
    assert tick.host_served[0] == pytest.approx(3.0)
    assert tick.host_watts[0] == pytest.approx(100.0)  # three busy VMs for the power of one


def _precopy_outcome(n_busy_neighbours: int) -> MigrationOutcome | None:
    """Precopy v0 (256 MiB, 200 MB/s at full load: faster than the link) off W beside busy VMs."""
    params = MigrationParams(timeout_s=60.0)
    c = _cluster(1 + n_busy_neighbours, 1.0, 1.0, params)
    c.wake_host("S")
    for k in range(6):
        c.step(float(k), 1.0, np.ones(c.vcpus.size))
    c.drain()
    c.start_migration("v0", "W", "S", MigrationMethod.PRECOPY)
    for k in range(6, 120):
        c.step(float(k), 1.0, np.ones(c.vcpus.size))
        done = [e for e in c.completed if e.vm == "v0"]
        if done:
            return done[0].outcome
    return None


def test_dirty_rate_follows_served_cpu() -> None:
    # Alone, v0 is served 1.0 and writes 200 MB/s > 113 MB/s of payload: its precopy never converges.
    assert _precopy_outcome(0) is MigrationOutcome.CANCELLED
    # Beside one busy VM it is served 0.5 and writes 100 MB/s: the same precopy converges.
    assert _precopy_outcome(1) is MigrationOutcome.COMPLETED


def test_postcopy_faults_follow_served_cpu() -> None:
    """A postcopy guest faults as fast as it writes, i.e. as fast as its new host lets it run: onto a host
    where another VM is busy it is served half, writes half as fast and loses less time to faults."""
    def stall_s(neighbour_load: float) -> float:
        hosts = [HostSpec("W", Role.WAREHOUSE, 1.0), HostSpec("S", Role.SERVER, 1.0)]
        vms = [VmSpec("v0", mem_mib=256), VmSpec("v1", mem_mib=256)]
        c = SimCluster(hosts, vms, {"v0": "W", "v1": "S"}, {}, MigrationParams())
        c.start_migration("v0", "W", "S", MigrationMethod.POSTCOPY)
        process = c.moves[0].process
        c.step(0.0, 1.0, np.array([1.0, neighbour_load]))  # set-up, then the guest resumes on S
        before = process.stall_s
        c.step(1.0, 1.0, np.array([1.0, neighbour_load]))
        return process.stall_s - before

    assert 0 < stall_s(1.0) < stall_s(0.0)
