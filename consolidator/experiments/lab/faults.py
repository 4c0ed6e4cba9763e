"""A fault-injection run over a live two-host lab (``consolidator lab run --faults SPEC``).

One VM moves back and forth between two agent hosts (own namespaces on a shaped bridge, real QEMU),
the manager's event forwarder (with its postcopy recovery) watching both agents; the SPEC
(``faultspec``) puts faults into some of the moves: a cut link, a killed agent (source or
destination, SIGKILL then restart), a killed destination QEMU, a dead source host (agent and QEMU),
a slowed link; or, before the move, its destination put to sleep and woken through dropped
Wake-on-LAN packets or an unreachable BMC (``powerfaults``). After each move the
run checks where the VM is against what the source reported (a move whose report is missing or
disagrees with QEMU is *unreconciled*), and the guest's pages. A VM gone from both hosts is lost;
the loss is *explained* only when a fault forces it (``kill_destination_qemu_postcopy``,
``kill_source_host``: half of a postcopy's guest dies) and the manager recorded it lost with its
cause; a lost VM is replaced by a new one for the remaining moves.

Not the control loop: the moves are the run's own, so each fault lands in a known phase (a
policy's moves would land where they land; docs/faults.md says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolidator.agent.qemu.migration import STALL_S
from consolidator.domain.events import Event, MigrationFinished
from consolidator.domain.types import MigrationOutcome
from consolidator.experiments.lab.agents import (
    AgentSpec,
    start_agent,
    stop_agent,
    wait_ready,
    write_config,
    write_token,
)
from consolidator.experiments.lab.faultspec import FORCED_LOSS, FaultSpec, Step
from consolidator.experiments.lab.network import LabNetwork
from consolidator.experiments.lab.powerfaults import POWER_FAULTS, HostFirmware, PowerOutcome, sleep_and_wake
from consolidator.manager.client import AgentError
from consolidator.manager.engine import AgentEngine
from consolidator.manager.events import EventForwarder
from consolidator.protocol.migration import OnTimeout
from consolidator.protocol.schemas import MigrateBody, VmBody, VmRunState

log = logging.getLogger(__name__)
LOCK = Path("/tmp/lab.lock")  # the lab's subnet is shared with `lab up`: one lab at a time
HOSTS = ("pm0", "pm1")
MOVE_TIMEOUT_S = 180.0
SOURCE_DOWN_S = 8.0  # a killed source host is back after this (the manager has 5 s to notice)


@dataclass
class Summary:
    spec: str
    seed: int
    faults: Counter[str] = field(default_factory=Counter)
    migrations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    vms_lost: int = 0
    unexplained_losses: int = 0
    migrations_unreconciled: int = 0
    postcopy_recoveries: int = 0
    bad_pages: int = 0
    pause_s: list[float] = field(default_factory=list)
    wake_fallbacks: int = 0  # wakes that succeeded by a later method than the first
    wake_errors: int = 0  # failed wake attempts (reported, retried or fallen back from)
    meter_errors: int = 0
    wakes_failed: int = 0  # hosts no method woke
    losses: list[dict[str, Any]] = field(default_factory=list)  # as the manager's recovery recorded them
    steps: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "seed": self.seed, "faults": dict(self.faults), "migrations": self.migrations,
                "outcomes": dict(self.outcomes), "vms_lost": self.vms_lost,
                "unexplained_losses": self.unexplained_losses,
                "migrations_unreconciled": self.migrations_unreconciled,
                "postcopy_recoveries": self.postcopy_recoveries, "bad_pages": self.bad_pages,
                "wake_fallbacks": self.wake_fallbacks, "wake_errors": self.wake_errors,
                "meter_errors": self.meter_errors, "wakes_failed": self.wakes_failed,
                "pause_s": [round(p, 2) for p in self.pause_s], "losses": self.losses, "steps": self.steps}

    @property
    def ok(self) -> bool:
        return (self.unexplained_losses == 0 and self.migrations_unreconciled == 0 and self.bad_pages == 0
                and self.wakes_failed == 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _lab_lock() -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class FaultLab:
    """Two agents in namespaces of their own (prefix ``cflt``), started and killed by pid."""

    def __init__(self, root: Path, link_bytes_per_s: float) -> None:
        self.root = root
        self.net = LabNetwork.plan(list(HOSTS), link_bytes_per_s, prefix="cflt")
        token = root / "token"
        write_token(token)
        self.specs = {h.host: AgentSpec(h.host, "127.0.0.1", _free_port(), root / h.host, token, netns=h.netns,
                                        migration_host=h.address, suspend_s=1.0, resume_s=1.0,
                                        peers={p.host: p.address for p in self.net.hosts if p is not h})
                      for h in self.net.hosts}
        self.pids: dict[str, int] = {}
        self.killed_wall_s: dict[str, float] = {}  # vm -> when its destination QEMU was killed
        self.clients = {h: AgentEngine(s.endpoint(), timeout_s=60) for h, s in self.specs.items()}
        self.firmware: dict[str, HostFirmware] = {}

    async def start_firmware(self) -> None:
        """Each host's Wake-on-LAN receiver and BMC (only runs with power faults need them)."""
        for i, h in enumerate(self.net.hosts):
            self.firmware[h.host] = HostFirmware(h.host, h.netns, h.address, self.clients[h.host], i)
            await self.firmware[h.host].start()

    async def start(self, host: str) -> None:
        spec = self.specs[host]
        self.pids[host] = start_agent(spec, write_config(spec, self.root / f"{host}.toml"), self.root / f"{host}.log")
        await wait_ready(spec, self.pids[host], timeout_s=60)

    def kill(self, host: str) -> None:
        pid = self.pids.pop(host)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def link(self, host: str, state: str) -> None:
        subprocess.run(["ip", "-n", self.net.netns_of(host), "link", "set", "eth0", state], check=True)

    def rate(self, host: str, bytes_per_s: float) -> None:
        bits = int(bytes_per_s * 8)
        subprocess.run(["ip", "netns", "exec", self.net.netns_of(host), "tc", "qdisc", "replace", "dev", "eth0",
                        "root", "tbf", "rate", f"{bits}bit", "burst", str(max(64 * 1024, int(bytes_per_s / 100))),
                        "latency", "20ms"], check=True)

    async def close(self) -> None:
        for fw in self.firmware.values():
            with contextlib.suppress(Exception):  # whatever else failed, the rest is still torn down
                await fw.close()
        for client in self.clients.values():
            await client.close()
        for host in list(self.pids):
            stop_agent(self.pids.pop(host))
        from consolidator.experiments.lab.lab import _kill_vms

        for host in HOSTS:
            _kill_vms(self.specs[host].state_dir)
        self.net.teardown()


async def _where(lab: FaultLab, vm: str) -> dict[str, VmRunState]:
    """Host -> state of ``vm`` on it (hosts that do not answer are left out)."""
    found: dict[str, VmRunState] = {}
    for host, client in lab.clients.items():
        with contextlib.suppress(AgentError):
            for view in await client.list_vms():
                if view.name == vm:
                    found[host] = view.state
    return found


async def _wait_state(lab: FaultLab, host: str, vm: str, states: tuple[VmRunState, ...], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await _where(lab, vm)).get(host) in states:
            return True
        await asyncio.sleep(0.1)
    return False


async def _inject(lab: FaultLab, step: Step, src: str, dst: str, vm: str, spec: FaultSpec) -> str:
    """Inject the step's fault into the move under way; returns what was done."""
    if step.fault is None or step.fault in POWER_FAULTS:
        return "none"
    if step.fault in ("link_cut", "long_link_cut", "kill_source_agent", "kill_destination_agent",
                      "kill_destination_qemu_postcopy", "kill_source_host"):
        if not await _wait_state(lab, dst, vm, (VmRunState.POSTCOPY,), 60):
            return "not injected: the move never entered postcopy"
        await asyncio.sleep(0.5)
    else:
        await asyncio.sleep(1.0)  # a precopy a second in
    if step.fault in ("link_cut", "long_link_cut"):
        down_s = spec.cut_s + (STALL_S if step.fault == "long_link_cut" else 0.0)
        lab.link(src, "down")
        await asyncio.sleep(down_s)
        lab.link(src, "up")
        return f"{src} link down {down_s:g} s"
    if step.fault in ("kill_source_agent", "kill_destination_agent"):
        host = src if step.fault == "kill_source_agent" else dst
        lab.kill(host)
        await asyncio.sleep(1.0)
        await lab.start(host)
        return f"agent {host} SIGKILLed, restarted 1 s later"
    if step.fault == "kill_source_host":
        pid = next((v.pid for v in await lab.clients[src].list_vms() if v.name == vm), None)
        lab.kill(src)  # the agent first: it must not report anything
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            lab.killed_wall_s[vm] = time.time()
        await asyncio.sleep(SOURCE_DOWN_S)
        await lab.start(src)
        return f"source agent and QEMU (pid {pid}) SIGKILLed; agent back {SOURCE_DOWN_S:g} s later"
    if step.fault in ("kill_destination_qemu", "kill_destination_qemu_postcopy"):
        pid = next((v.pid for v in await lab.clients[dst].list_vms() if v.name == vm), None)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            lab.killed_wall_s[vm] = time.time()
        return f"destination QEMU (pid {pid}) killed"
    lab.rate(src, spec.link_bytes_per_s / 10)
    return f"{src} link slowed to 1/10"


async def _move(lab: FaultLab, step: Step, src: str, dst: str, vm: str, body: VmBody, seen: list[Event],
                spec: FaultSpec, summary: Summary) -> str:
    """One migration with its fault; returns where the VM is afterwards."""
    first, started = len(seen), time.monotonic()
    power = await sleep_and_wake(lab.firmware[dst], step.fault) if step.fault in POWER_FAULTS else None
    if power is not None:
        summary.faults[str(step.fault)] += 1
        _count_power(summary, power)
        if not power.woke:  # no move to a host that sleeps on; the VM stays where it runs
            summary.steps.append({"method": step.method.value, "src": src, "dst": dst, "fault": step.fault,
                                  "injected": power.injected, **power.as_json()})
            return src
    uri = await lab.clients[dst].prepare_incoming(body)
    await lab.clients[src].migrate(vm, MigrateBody(
        dst_uri=uri, dst_host=dst, method=step.method.value,  # type: ignore[arg-type]
        max_bandwidth_bytes_per_s=spec.link_bytes_per_s, downtime_limit_s=0.3, timeout_s=30.0,
        on_timeout=OnTimeout.CANCEL, hybrid_precopy_rounds=1))
    done = await _inject(lab, step, src, dst, vm, spec)
    deadline = time.monotonic() + MOVE_TIMEOUT_S
    finished = None
    while finished is None and time.monotonic() < deadline:
        finished = next((e for e in seen[first:] if isinstance(e, MigrationFinished) and e.vm == vm), None)
        await asyncio.sleep(0.2)
    if step.fault == "slow_link":
        lab.rate(src, spec.link_bytes_per_s)
    where = await _where(lab, vm)
    running = [h for h, state in where.items() if state is VmRunState.RUNNING]
    expected = dst if finished is not None and finished.outcome is MigrationOutcome.COMPLETED else src
    record: dict[str, Any] = {"method": step.method.value, "src": src, "dst": dst, "fault": step.fault,
                              "injected": power.injected if power else done,
                              "outcome": finished.outcome.value if finished else None,
                              "where": where, "took_s": round(time.monotonic() - started, 1),
                              **(power.as_json() if power else {})}
    if step.fault is not None and power is None:
        summary.faults[step.fault] += 1
    summary.migrations += 1
    summary.outcomes[record["outcome"] or "unreported"] += 1
    if running and (finished is None or running != [expected]):
        summary.migrations_unreconciled += 1  # no report, or one that QEMU's state contradicts
        record["unreconciled"] = True
    if not running:
        summary.vms_lost += 1
        reported = finished is not None and finished.outcome in (MigrationOutcome.FAILED, MigrationOutcome.LOST)
        if step.fault not in FORCED_LOSS or not reported:
            summary.unexplained_losses += 1
        record["lost"] = True
        for host in where:  # what is left of it (a stopped QEMU) goes
            with contextlib.suppress(AgentError):
                await lab.clients[host].destroy_vm(vm, force=True)
        summary.steps.append(record)
        return ""
    home = running[0]
    for host in where:  # an abandoned incoming QEMU would block the next move
        if host != home:
            with contextlib.suppress(AgentError):
                await lab.clients[host].destroy_vm(vm)
    record["bad_pages"] = await lab.clients[home].check_pages(vm)
    summary.bad_pages += record["bad_pages"]
    summary.steps.append(record)
    return home


def _count_power(summary: Summary, power: PowerOutcome) -> None:
    summary.wake_errors += sum(1 for a in power.attempts if not a["ok"])
    summary.meter_errors += len(power.meter_errors)
    if not power.woke:
        summary.wakes_failed += 1
    elif power.attempts and power.method != power.attempts[0]["method"]:
        summary.wake_fallbacks += 1


async def run_faults(spec: FaultSpec, out: Path) -> Summary:
    """Bring up the fault lab, run the spec's moves, tear everything down; the summary of what happened."""
    summary = Summary(spec.name, spec.seed)
    root = Path(f"/tmp/cflt-{os.getpid()}")  # short: QMP socket paths must stay under 108 bytes
    root.mkdir(parents=True, exist_ok=True)
    with _lab_lock():
        lab = FaultLab(root, spec.link_bytes_per_s)
        lab.net.setup()
        seen: list[Event] = []
        forwarder = EventForwarder(dict(lab.clients), time.time(), seen.append)
        try:
            for host in HOSTS:
                await lab.start(host)
            if any(s.fault in POWER_FAULTS for s in spec.steps):
                await lab.start_firmware()
            await forwarder.start()
            body = VmBody(name="vm0", mem_mib=spec.vm_mem_mib, vcpus=1, cpu_quota=0.5, load=0.3, dirty_mib_s=20,
                          wws_mib=None)
            await lab.clients["pm0"].create_vm(body)
            home = "pm0"
            for step in spec.steps:
                other = HOSTS[1] if home == HOSTS[0] else HOSTS[0]
                arrived = await _move(lab, step, home, other, body.name, body, seen, spec, summary)
                if not arrived:  # lost: a new VM on the source for the moves still to come
                    body = body.model_copy(update={"name": f"vm{summary.migrations}"})
                    await lab.clients[home].create_vm(body)
                else:
                    home = arrived
            stats = forwarder.recovery.stats
            summary.postcopy_recoveries, summary.pause_s = stats.resumed, list(stats.paused_s)
            summary.losses = [{"vm": x.vm, "src": x.src, "dst": x.dst, "cause": x.cause, "certain": x.certain,
                               "detected_after_kill_s": round(x.wall_s - lab.killed_wall_s[x.vm], 2)
                               if x.vm in lab.killed_wall_s else None} for x in stats.lost]
        finally:
            await forwarder.stop()
            await lab.close()
            for host in HOSTS:  # keep the agents' logs with the summary
                log_file = root / f"{host}.log"
                if log_file.exists():
                    out.mkdir(parents=True, exist_ok=True)
                    (out / f"{host}.log").write_bytes(log_file.read_bytes())
            shutil.rmtree(root, ignore_errors=True)
    return summary
