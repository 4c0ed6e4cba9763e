"""What one real VM costs and how fast it moves here (QEMU 10, TCG on this machine; needs root).

    python3 benchmarks/bench_qemu.py [--json]

Figures: guest build from the cache; boot until the workload generator answers (median of 3);
host CPU of an idle VM and of a full-load VM capped at 0.5 core (cgroup quota), over 5 s; a 256 MiB
postcopy migration of a guest writing 80 MiB/s over a 120 MB/s tc-shaped link (time, downtime, and
time / (non-zero bytes sent / link rate), the issue's bound being 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from consolidator.agent.guest import build_guest
from consolidator.agent.hypervisor import MigrationRequest
from consolidator.agent.qemu import DriverSettings, QemuDriver
from consolidator.agent.qemu.netlink import ShapedLink
from consolidator.domain.types import MigrationMethod
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import VmConfig

LINK_BYTES_PER_S = 120e6


async def _cpu_over(driver: QemuDriver, vm: str, seconds: float) -> float:
    await driver.vm_stats(vm)
    await asyncio.sleep(seconds)
    return (await driver.vm_stats(vm)).cpu_load


async def _measure(root: Path, link: ShapedLink) -> dict[str, float]:
    guest = build_guest()
    src = QemuDriver(DriverSettings(root / "a", netns=link.a.netns, guest=guest))
    dst = QemuDriver(DriverSettings(root / "b", netns=link.b.netns, guest=guest))
    figures: dict[str, float] = {}
    try:
        boots = []
        for i in range(3):
            started = time.monotonic()
            await src.create_vm(VmConfig(f"boot{i}", mem_mib=256))
            boots.append(time.monotonic() - started)
            if i < 2:
                await src.destroy_vm(f"boot{i}")
        figures["boot_to_ready_s_median"] = statistics.median(boots)
        figures["idle_vm_host_cores"] = await _cpu_over(src, "boot2", 5.0)
        await src.destroy_vm("boot2")
        await src.create_vm(VmConfig("busy", mem_mib=256, cpu_quota=0.5, load=1.0))
        figures["full_load_vm_quota_0_5_host_cores"] = await _cpu_over(src, "busy", 5.0)
        await src.destroy_vm("busy")
        config = VmConfig("mig", mem_mib=256, load=0.3, dirty_mib_s=80)
        await src.create_vm(config)
        await asyncio.sleep(2.0)
        uri = await dst.prepare_incoming(config, link.b.address)
        report = await src.migrate(MigrationRequest("mig", uri, MigrationMethod.POSTCOPY, MigrationOptions(
            max_bandwidth_bytes_per_s=LINK_BYTES_PER_S)))
        marks = await dst.wait_incoming("mig")
        figures["postcopy_256mib_80mib_s_total_s"] = report.total_s
        figures["postcopy_downtime_s"] = marks["resume"] - report.timeline["stop"]
        figures["postcopy_time_over_touched_ratio"] = report.total_s / (report.normal_bytes / LINK_BYTES_PER_S)
        figures["postcopy_bad_pages"] = await dst.check_pages("mig")
    finally:
        for driver in (src, dst):
            for info in await driver.list_vms():
                await driver.destroy_vm(info.name)
            await driver.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None:
        print("skipped: needs root and qemu-system-x86_64 (scripts/setup.d/20-qemu.sh)")
        return
    started = time.monotonic()
    build_guest()
    cached_s = time.monotonic() - started
    root = Path(tempfile.mkdtemp(prefix="cbq-", dir="/tmp"))
    try:
        with ShapedLink(LINK_BYTES_PER_S, tag=str(60000 + os.getpid() % 9000)) as link:
            figures = {"guest_build_cached_s": cached_s, **asyncio.run(_measure(root, link))}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["load_average_1min"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.python_version()}")
    for name, value in figures.items():
        print(f"{name:<40} {value:10.3f}")


if __name__ == "__main__":
    main()
