"""``lab run --engine libvirt``: the lab's scaled scenario through libvirt instead of our agents.

One private libvirtd per scenario host (``experiments.libvirt_testbed``: its own network, mount and UTS
namespace, Debian's daemon, QEMU under TCG), all on a lab network of their own (``LabNetwork`` with
pid-tagged names and subnet, so it never meets the agent lab's ``clab-*`` resources), each link shaped
like the agent lab's. The guests are libvirt domains of the project's test guest with a disk in a
shared image folder and a virtio NIC. The manager service
drives them through ``LibvirtEngine`` (``driver = "libvirt"`` hosts, ``emulated``: a host "suspends"
by freezing its libvirtd, SIGSTOP, and wakes by SIGCONT; the hosts the scenario starts suspended are
suspended so before the run, through the service's own engines — argv commands, as cluster.toml gives them);
the scenario's loads go to each guest's workload generator through its control socket.

The guests are not capped: a private libvirtd here gets no CPU cgroup (libvirt 11.3 refuses cputune
with "cgroup cpu is required for scheduler tuning"), so a VM's "100 %" is its one vCPU, one core —
the run's ``cpu_quota`` is 1.0, whatever the command line says.
Needs root; everything it makes is removed at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from consolidator.agent.hypervisor import DriverError
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.experiments.lab.experiment import run_config, run_service, vm_body
from consolidator.experiments.lab.network import LabNetwork
from consolidator.experiments.lab.record import LabRecorder
from consolidator.experiments.lab.scale import LabPolicy, LabScale, host_names, load_at
from consolidator.experiments.libvirt_testbed import Testbed
from consolidator.manager.config import parse_cluster_config
from consolidator.manager.engine import make_engine
from consolidator.protocol.schemas import VmBody, VmConfig
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario

log = logging.getLogger(__name__)
# Before its warm-up, the service connects to every libvirtd and reads their first statistics: seconds
# under TCG on a busy machine (the scenario's clock must not start meanwhile)
CONNECT_S = 5.0
# A VM's load here is its QEMU's CPU (libvirt's cpu.time), not the guest's own reading: a freshly
# booted guest still busy filling its memory reads as loaded for seconds (a light VM was sent to a
# Server at t = 0.6 s after the agent lab's 3 s settle), so the guests settle longer before the run
SETTLE_S = 12.0


class LabNetworkHosts:
    """``HostNetwork`` over the lab's bridge network (``LabNetwork``)."""

    def __init__(self, net: LabNetwork) -> None:
        self.net = net

    def open(self) -> None:
        self.net.setup()

    def close(self) -> None:
        self.net.teardown()

    def netns_of(self, host: str) -> str:
        return self.net.netns_of(host)

    def address_of(self, host: str) -> str:
        return self.net.address_of(host)


class LibvirtLab:
    """The scenario's hosts as private libvirtd daemons; ``with`` it to bring them up and down."""

    def __init__(self, sc: Scenario, link_bytes_per_s: float, tag: int | None = None) -> None:
        n = os.getpid() % 10000 if tag is None else tag
        net = LabNetwork.plan(host_names(sc), link_bytes_per_s, prefix=f"clv{n}", subnet=f"10.78.{n % 250}")
        self.sc = sc
        self.link_bytes_per_s = link_bytes_per_s
        self.bed = Testbed(host_names(sc), tag=str(n), network=LabNetworkHosts(net))

    def __enter__(self) -> LibvirtLab:
        self.bed.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bed.close()

    def cluster_data(self) -> dict[str, Any]:
        """The cluster.toml an operator would write for these hosts (as a parsed table)."""
        hosts: dict[str, Any] = {}
        for spec in self.sc.hosts:
            s, p = self.bed.settings(spec.name), spec.power
            hosts[spec.name] = {
                "driver": "libvirt", "role": spec.role.value, "uri": s.uri, "migrate_uri": s.migrate_uri,
                "suspend_command": list(s.suspend_command), "wake_command": list(s.wake_command), "emulated": True,
                "cores": spec.cores, "mem_mib": spec.mem_mib, "suspend_s": p.suspend_s, "wake_s": p.resume_s,
                "profile": {"idle_watts": p.idle_watts, "max_watts": p.max_watts,
                            "suspended_watts": p.suspended_watts, "off_watts": p.off_watts}}
        return {"mode": "auto", "period_s": self.sc.tick_s, "hosts": hosts,
                "run_store": str(self.bed.root / "run.sqlite"), "api_token_file": str(self._token_file())}

    def _token_file(self) -> Path:
        path = self.bed.root / "token"
        if not path.exists():
            path.write_bytes(os.urandom(24).hex().encode())
            path.chmod(0o600)
        return path

    async def set_load(self, host: str, body: VmBody) -> None:
        """The guest's control socket on ``host``; OSError when the guest is not (or no longer) there,
        which the load driver retries at the next period."""
        try:
            await asyncio.to_thread(self.bed.set_load, host, body.name, body.load, body.dirty_mib_s)
        except DriverError as exc:  # the guest moved away meanwhile, or is busy in a move
            raise OSError(str(exc)) from exc

    async def prepare(self, scale: LabScale) -> dict[str, PowerState]:
        """Every host awake and empty; the guests booted idle where the scenario places them, then given
        their loads. Returns the power state each host starts the run in (the simulator's: the hosts
        without guests suspended), which ``run_live`` sets through the service's engines."""
        sc = self.sc
        await asyncio.to_thread(self.bed.reset)
        await asyncio.gather(*(asyncio.to_thread(self.bed.create_guest, sc.placement[v.name],
                                                 VmConfig(v.name, v.mem_mib, v.vcpus)) for v in sc.vms))
        for j, v in enumerate(sc.vms):
            await self.set_load(sc.placement[v.name], vm_body(sc, j, load_at(sc.schedules[j], 0.0), scale))
        used = set(sc.placement.values())
        await asyncio.sleep(SETTLE_S)
        return {h: PowerState.ON if h in used else PowerState.SUSPENDED for h in self.bed.names}

    async def run_live(self, scale: LabScale, method: MigrationMethod, out_dir: Path,
                       policy: LabPolicy) -> tuple[RunResult, LabRecorder]:
        """One live run of the scenario with ``policy`` through libvirt (``experiment.run_service``)."""
        power_states = await self.prepare(scale)
        source = f"libvirt lab {self.bed.root}"
        config = run_config(parse_cluster_config(self.cluster_data(), source), self.sc, scale, method,
                            out_dir, source, policy)
        params = {"engine": "libvirt", "link_bytes_per_s": self.link_bytes_per_s,
                  "manager": "consolidator manager service over libvirt hosts (LibvirtEngine)"}
        # the empty hosts are suspended through the engines the service will use, so that they know
        # it: a frozen libvirtd does not answer, and an engine that does not know why counts it failed
        engines = {name: make_engine(name, host, config.leash()) for name, host in config.hosts.items()}
        try:
            for host, state in power_states.items():
                if state is PowerState.SUSPENDED:
                    await engines[host].suspend()
            return await run_service(config, self.sc, scale, method, out_dir, power_states, params,
                                     send=self.set_load, connect_s=CONNECT_S, engines=engines)
        finally:  # a connection attempt to a frozen ("suspended") daemon returns once it is thawed
            for host in self.bed.names:
                self.bed.wake(host)
