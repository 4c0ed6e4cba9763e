"""Calibration: a grid of real QEMU migrations set beside the simulator's migration model.

Two QEMU "hosts" (network namespaces joined by a veth pair shaped with ``tc tbf``) pass one guest
back and forth, once with QEMU's ``postcopy-preempt`` off (vanilla postcopy; precopy rows run here)
and once with it on (postcopy and hybrid rows again); before each migration the guest's workload
is set to the grid's dirty rate and measured (page writes it really made, RAM it really touched), and
the model
(``consolidator.models.migration.estimate``) is given those measured inputs. Needs root and QEMU.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consolidator.agent.guest import GuestImage, build_guest
from consolidator.agent.hypervisor import MigrationRequest
from consolidator.agent.qemu import DriverSettings, QemuDriver
from consolidator.agent.qemu.netlink import ShapedLink
from consolidator.domain.types import MIB, MigrationMethod, MigrationOutcome
from consolidator.models.migration import MigrationParams, OnTimeoutPolicy, estimate
from consolidator.protocol.migration import MigrationOptions, OnTimeout
from consolidator.protocol.schemas import VmConfig

# vCPU stall per remote fault of vanilla postcopy (no preempt channel), measured here: median block
# time per page request of the grid's writing rows (docs/calibration.md). The model's default
# (MigrationParams.postcopy_fault_s) is the preempt value, which is what the driver uses.
VANILLA_POSTCOPY_FAULT_S = 0.0272

log = logging.getLogger(__name__)

MODES = (MigrationMethod.PRECOPY, MigrationMethod.POSTCOPY, MigrationMethod.HYBRID)
FULL_MEM_MIB = (256, 512)
DIRTY_MIB_S = (0.0, 4.0, 40.0, 80.0, 200.0)  # 4 MiB/s: where the fault cost decides the guest's stall
PREEMPT = (False, True)
QUICK_MEM_MIB = (256,)
# The grid's guest only writes memory (load 0: the generator writes by wall time). With a CPU load,
# the work-conserving generator writes as its tasks are served, so on this shared machine the rate
# would follow the CPU other jobs leave it, not the grid's setting; the migration model needs the rate.
CALIBRATION_LOAD = 0.0


@dataclass(frozen=True, slots=True)
class GridSpec:
    """What to run: memory sizes × dirty rates × modes, and the link and migration settings."""

    mem_mib: tuple[int, ...] = FULL_MEM_MIB
    dirty_mib_s: tuple[float, ...] = DIRTY_MIB_S
    modes: tuple[MigrationMethod, ...] = MODES
    preempt: tuple[bool, ...] = PREEMPT  # postcopy-preempt off, on (precopy rows run with the first)
    link_bytes_per_s: float = 120e6
    downtime_limit_s: float = 0.3
    timeout_s: float = 20.0  # a precopy still running then is cancelled (DESIGN §4 table: 30 s)
    settle_s: float = 2.0  # workload runs this long at its new rate before it is measured and moved

    @classmethod
    def quick(cls) -> GridSpec:
        return cls(mem_mib=QUICK_MEM_MIB, timeout_s=15.0, settle_s=1.5)


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One real migration and the model's prediction for the same inputs."""

    mode: str
    mem_mib: int
    dirty_mib_s: float  # the grid's (requested) rate
    real_s: float
    model_s: float
    converged: bool  # the migration completed (as the model's ``converged``)
    bytes_sent: int
    bad_pages: int  # pages of the guest's working set that lost their last write
    outcome: str
    dirty_measured_mib_s: float  # page writes the guest really made before the move
    touched_bytes: int  # guest RAM minus its MemFree before the move
    wws_bytes: int
    rounds: int
    downtime_s: float | None  # source STOP -> destination RESUME
    normal_bytes: int
    postcopy_requests: int
    postcopy_blocktime_s: float | None
    model_bytes: float
    switched_to_postcopy: bool
    link_bytes_per_s: float = 120e6
    timeout_s: float = 20.0
    preempt: bool = False  # the move ran with QEMU's postcopy-preempt (never for precopy)
    postcopy_vcpu_blocktime_s: float | None = None  # the destination's per-vCPU block time, summed
    model_stall_s: float | None = None  # the model's guest stall for the same inputs


def fault_cost_s(preempt: bool) -> float:
    """The model's fault cost for a move with or without postcopy-preempt."""
    return MigrationParams().postcopy_fault_s if preempt else VANILLA_POSTCOPY_FAULT_S


def model_params(spec: GridSpec, preempt: bool = True) -> MigrationParams:
    """The model's defaults, with the grid's link, downtime limit and timeout, and the fault cost of
    postcopy with or without preempt."""
    return MigrationParams(bandwidth_bytes_per_s=spec.link_bytes_per_s,
                           downtime_limit_s=spec.downtime_limit_s, timeout_s=spec.timeout_s,
                           on_timeout=OnTimeoutPolicy.CANCEL, hybrid_rounds=1,
                           postcopy_fault_s=fault_cost_s(preempt))


class _Host:
    def __init__(self, driver: QemuDriver, address: str) -> None:
        self.driver = driver
        self.address = address


async def _measure_guest(src: _Host, name: str, settle_s: float) -> tuple[float, int, int]:
    """Dirty rate really achieved (MiB/s), touched RAM and working set (bytes), over ``settle_s``."""
    before = await src.driver.guest_stats(name)
    await asyncio.sleep(settle_s)
    after = await src.driver.guest_stats(name)
    elapsed = max(1e-3, after.uptime_s - before.uptime_s)
    rate = (after.pages_written - before.pages_written) / 256 / elapsed
    config = next(i.config for i in await src.driver.list_vms() if i.name == name)
    touched = config.mem_mib * MIB - after.memfree_kib * 1024
    return rate, touched, after.pages * 4096


async def _one(spec: GridSpec, src: _Host, dst: _Host, name: str, mode: MigrationMethod,
               dirty_mib_s: float) -> tuple[CalibrationRow, bool]:
    """Migrate ``name`` from ``src`` to ``dst`` once; return the row and whether it moved."""
    dirty_measured, touched, wws = await _measure_guest(src, name, spec.settle_s)
    config = next(i.config for i in await src.driver.list_vms() if i.name == name)
    uri = await dst.driver.prepare_incoming(config, dst.address)
    report = await src.driver.migrate(MigrationRequest(
        vm=name, dst_uri=uri, method=mode, options=MigrationOptions(
            max_bandwidth_bytes_per_s=spec.link_bytes_per_s, downtime_limit_s=spec.downtime_limit_s,
            timeout_s=spec.timeout_s, on_timeout=OnTimeout.CANCEL, hybrid_precopy_rounds=1)))
    moved = report.outcome is MigrationOutcome.COMPLETED
    marks: dict[str, float] = {}
    if moved:
        marks = await dst.driver.wait_incoming(name)
    else:
        await dst.driver.destroy_vm(name)
    home = dst if moved else src
    bad = await home.driver.check_pages(name)
    faults = await dst.driver.postcopy_faults(name) if moved else None
    est = estimate(mode, config.mem_mib * MIB, wws, dirty_measured * MIB,
                   model_params(spec, report.postcopy_preempt), touched)
    downtime = marks["resume"] - report.timeline["stop"] if "resume" in marks and "stop" in report.timeline \
        else None
    row = CalibrationRow(
        mode=mode.value, mem_mib=config.mem_mib, dirty_mib_s=dirty_mib_s, real_s=round(report.total_s, 3),
        model_s=round(est.duration_s, 3), converged=moved, bytes_sent=report.bytes_sent, bad_pages=bad,
        outcome=report.outcome.value, dirty_measured_mib_s=round(dirty_measured, 2), touched_bytes=touched,
        wws_bytes=wws, rounds=report.rounds, downtime_s=None if downtime is None else round(downtime, 4),
        normal_bytes=report.normal_bytes, postcopy_requests=report.postcopy_requests,
        postcopy_blocktime_s=marks.get("postcopy_blocktime_s"), model_bytes=round(est.bytes_sent),
        switched_to_postcopy=report.switched_to_postcopy, link_bytes_per_s=spec.link_bytes_per_s,
        timeout_s=spec.timeout_s, preempt=report.postcopy_preempt,
        postcopy_vcpu_blocktime_s=None if faults is None else round(sum(faults.vcpu_blocktime_s), 3),
        model_stall_s=round(est.guest_stall_s, 3) if mode is not MigrationMethod.PRECOPY else None)
    return row, moved


def pass_modes(spec: GridSpec, preempt: bool) -> tuple[MigrationMethod, ...]:
    """Modes of one pass: precopy only in the first pass (preempt changes postcopy only)."""
    first = preempt == spec.preempt[0]
    return tuple(m for m in spec.modes if first or m is not MigrationMethod.PRECOPY)


async def _run_size(spec: GridSpec, link: ShapedLink, guest: GuestImage, root: Path, mem_mib: int,
                    preempt: bool, report: Callable[[CalibrationRow], None]) -> list[CalibrationRow]:
    modes = pass_modes(spec, preempt)
    if not modes:
        return []
    tag = f"m{mem_mib}{'p' if preempt else 'v'}"
    hosts = [_Host(QemuDriver(DriverSettings(root / f"{tag}{side}", netns=end.netns, guest=guest,
                                             postcopy_preempt=preempt)), end.address)
             for side, end in (("a", link.a), ("b", link.b))]
    name, here, rows = f"cal{mem_mib}", 0, []
    try:
        await hosts[0].driver.create_vm(VmConfig(name, mem_mib=mem_mib))
        for dirty in spec.dirty_mib_s:
            await hosts[here].driver.set_load(name, CALIBRATION_LOAD, dirty)
            for mode in modes:
                row, moved = await _one(spec, hosts[here], hosts[1 - here], name, mode, dirty)
                here = 1 - here if moved else here
                rows.append(row)
                report(row)
    finally:
        for host in hosts:
            for info in await host.driver.list_vms():
                await host.driver.destroy_vm(info.name)
            await host.driver.close()
    return rows


def run_grid(spec: GridSpec, report: Callable[[CalibrationRow], None] = lambda row: None,
             guest: GuestImage | None = None) -> list[CalibrationRow]:
    """Run the whole grid on this machine (root, QEMU); namespaces and state are removed afterwards."""
    guest = guest or build_guest()
    root = Path(tempfile.mkdtemp(prefix="ccal-", dir="/tmp"))  # short: unix socket paths
    try:
        with ShapedLink(spec.link_bytes_per_s, tag=str(70000 + os.getpid() % 9000)) as link:
            rows: list[CalibrationRow] = []
            for mem in spec.mem_mib:
                for preempt in spec.preempt:
                    rows += asyncio.run(_run_size(spec, link, guest, root, mem, preempt, report))
            return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
