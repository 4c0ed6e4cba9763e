"""End to end with real QEMU (TCG here): ``consolidator manager`` as a process over three lab agents in
network namespaces (``lab_up`` with names and ports of this test run, its cluster.toml).

One story, to keep CI short: in ``recommend`` mode the agents see no migration and no suspend; switched
to ``auto`` through the API it moves the busy VM off the Warehouse node and is killed with SIGKILL in
the middle of that migration; started again it adopts the move (no second one, no VM lost, guest
memory intact); it then consolidates the VM back when it idles, suspends the emptied host, wakes a
host when the load returns, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consolidator.agent.qemu import launch
from consolidator.domain.types import HostSpec, PowerState, Role
from consolidator.experiments.lab.cluster_file import write_cluster_config
from consolidator.experiments.lab.lab import LabState, lab_down, lab_up
from consolidator.manager.client import AgentClient
from consolidator.protocol.schemas import VmBody

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(900)]
HOSTS = ["pm0", "pm1", "pm2"]
LINK_BYTES_PER_S = 60e6
# while the manager is killed and restarted: a 256 MiB guest that wrote over its memory then takes
# ~50 s to move, room to start the manager again before the move ends
SLOW_LINK_BYTES_PER_S = 5e6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab() -> Iterator[LabState]:
    reason = launch.why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    # the lab subnet (10.77.0.0/24) is one per machine: hold the lab lock while ours is up
    with open("/tmp/lab.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = Path(f"/tmp/cm-{os.getpid()}")  # short: QMP socket paths must stay under 108 bytes
        shutil.rmtree(folder, ignore_errors=True)
        state = None
        try:
            state = lab_up(folder, HOSTS, LINK_BYTES_PER_S, resume_s=0.5, suspend_s=0.5,
                           prefix=f"cm{os.getpid() % 10000}", agent_port=30000 + os.getpid() % 20000)
            yield state
        finally:
            lab_down(folder)
            shutil.rmtree(folder, ignore_errors=True)


class Manager:
    """The manager process; started and stopped by pid."""

    def __init__(self, config: Path, listen: int) -> None:
        self.config, self.listen = config, listen
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{listen}"

    def start(self, token: str) -> None:
        log = open(self.config.parent / "manager.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "consolidator.cli.main", "manager", "--config",
                                      str(self.config), "--listen", f"127.0.0.1:{self.listen}"],
                                     stdout=log, stderr=log)
        self.auth = {"Authorization": f"Bearer {token}"}
        wait_for(lambda: self._answers(), 120, "manager API")

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "manager exited"
        try:
            return httpx.get(f"{self.base}/api/status", headers=self.auth, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.base}{path}", headers=self.auth, timeout=10).json()

    def kill(self) -> None:
        """Leave nothing running (a failed assertion, or the end of the test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def signal(self, sig: int) -> int | None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=120)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Agents:
    """Synchronous helpers over the lab's agents (each call its own event loop)."""

    def __init__(self, state: LabState) -> None:
        self.endpoints = state.endpoints()

    def call(self, host: str, fn: Callable[[AgentClient], Any]) -> Any:
        async def main() -> Any:
            client = AgentClient(self.endpoints[host], timeout_s=120)
            try:
                return await fn(client)
            finally:
                await client.close()

        return asyncio.run(main())

    def vms(self) -> dict[str, list[tuple[str, str]]]:
        return {h: [(v.name, v.state.value) for v in self.call(h, lambda c: c.list_vms())] for h in HOSTS}

    def where(self, vm: str) -> list[str]:
        return [h for h, vms in self.vms().items() if (vm, "running") in vms]

    def power(self, host: str) -> PowerState:
        return self.call(host, lambda c: c.host_stats()).power_state  # type: ignore[no-any-return]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for h in HOSTS
                for e in self.call(h, lambda c: c.events(after=0)).events if e.kind == kind]


def test_manager_end_to_end_over_qemu(lab: LabState) -> None:
    managers: list[Manager] = []
    try:
        story(lab, managers)
    except AssertionError:
        journal = lab.cluster_file.parent / "manager.journal.jsonl"
        print("journal tail:", *(journal.read_text().splitlines()[-12:] if journal.exists() else []), sep="\n")
        print("manager log tail:", *[json.dumps(e) for e in manager_log(lab)[-15:]], sep="\n")
        print("VMs:", Agents(lab).vms())
        raise
    finally:
        for manager in managers:
            manager.kill()


def story(lab: LabState, managers: list[Manager]) -> None:
    agents = Agents(lab)
    specs = [HostSpec(h, Role.WAREHOUSE if h == "pm0" else Role.SERVER, cores=1.0, mem_mib=4096) for h in HOSTS]
    config = write_cluster_config(
        lab, specs, mode="recommend", period_s=1.0, window_periods=3,
        policy={"name": "paper", "args": {"hold_s": 3}},
        migration={"method": "postcopy", "max_bandwidth_bytes_per_s": LINK_BYTES_PER_S},
        # a starved TCG guest can look idle on a busy machine and be sent back and forth: the
        # anti-thrashing cap allows exactly the three moves of this story and counts the rest
        limits={"min_hold_s": 3, "drain_timeout_s": 120, "max_moves_per_vm_per_hour": 3})
    for name, load in (("vm0", 1.0), ("vm1", 0.05)):
        agents.call("pm0", lambda c, n=name, x=load: c.create_vm(
            VmBody(name=n, mem_mib=256, cpu_quota=0.25, load=x, dirty_mib_s=40 * x)))
    manager = Manager(config, _free_port())
    managers.append(manager)
    manager.start(lab.token_file.read_text().strip())

    # recommend: the plan is shown, nothing is applied
    wait_for(lambda: any(a["kind"] == "migrate" and a["vm"] == "vm0" for p in manager.get("/api/recommendations")
                         for a in p["actions"]), 120, "a recommendation to move vm0")
    time.sleep(3.0)
    assert agents.events("migration_started") == [] and agents.events("host_power") == []
    assert manager.get("/api/status")["mode"] == "recommend"

    # auto, then SIGKILL in the middle of the move, and a restart at once
    net = lab.network().reshape(SLOW_LINK_BYTES_PER_S)
    answer = httpx.put(f"{manager.base}/api/mode", headers=manager.auth, json={"mode": "auto"}, timeout=10)
    assert answer.status_code == 200
    wait_for(lambda: ("vm0", "migrating") in agents.vms()["pm0"] or
             any(s in ("incoming", "postcopy") for n, s in agents.vms()["pm1"] + agents.vms()["pm2"] if n == "vm0"),
             120, "vm0 migrating")
    assert manager.signal(signal.SIGKILL) == -signal.SIGKILL
    manager.start(lab.token_file.read_text().strip())
    in_flight_at_kill = agents.vms()
    started = agents.events("migration_started")
    assert len(started) == 1 and started[0]["vm"] == "vm0"
    net.reshape(LINK_BYTES_PER_S)
    wait_for(lambda: len(agents.where("vm0")) == 1 and agents.where("vm0")[0] != "pm0", 180, "vm0 moved")
    journal = [json.loads(x) for x in (lab.cluster_file.parent / "manager.journal.jsonl").read_text().splitlines()]
    restart = [j for j in journal if j["kind"] == "start"][-1]
    assert restart["mode"] == "auto"  # the switch made through the API survived the restart
    if restart["adopted"] != ["vm0"]:
        print(json.dumps({"restart": restart, "at_kill": in_flight_at_kill,
                          "finished": agents.events("migration_finished"), "log": manager_log(lab)}, indent=1))
    assert restart["adopted"] == ["vm0"]  # still moving at restart: adopted, not started again
    server = agents.where("vm0")[0]
    assert len(agents.events("migration_started")) == 1  # no duplicate
    assert agents.call(server, lambda c: c.check_pages("vm0")) == 0  # nothing lost in the guest's memory
    assert agents.where("vm1") == ["pm0"]

    # consolidation: vm0 idles -> back to the Warehouse node; its server, emptied, is suspended
    agents.call(server, lambda c: c.set_load("vm0", 0.05, 1))
    wait_for(lambda: agents.where("vm0") == ["pm0"] and agents.power(server) is PowerState.SUSPENDED, 180,
             "vm0 back on pm0 and its server suspended")
    # the load returns: a sleeping server is woken and vm0 moves to it
    agents.call("pm0", lambda c: c.set_load("vm0", 1.0, 40))
    wait_for(lambda: agents.where("vm0") not in ([], ["pm0"]), 180, "vm0 moved to a woken server")
    target = agents.where("vm0")[0]
    assert agents.power(target) is PowerState.ON
    woken = [e for e in agents.events("host_power") if e["host"] == target and e["power_state"] == "resuming"]
    assert woken, "the target was woken"
    status = manager.get("/api/status")
    metrics = httpx.get(f"{manager.base}/metrics", timeout=10).text
    assert manager.signal(signal.SIGTERM) == 0
    finished = agents.events("migration_finished")
    print(f"\nmoves: {[(e['vm'], e['src'], e['dst'], e['outcome']) for e in finished]}")
    assert [e["outcome"] for e in finished] == ["completed"] * 3 and len(agents.events("migration_started")) == 3
    assert sorted(v["name"] for v in status["vms"]) == ["vm0", "vm1"]
    assert 'consolidator_migrations_total{method="postcopy",outcome="completed"}' in metrics
    downtimes = [e for e in manager_log(lab) if "downtime" in e.get("msg", "")]
    print(f"\nmanager e2e: moves {[(e['vm'], e['src'], e['dst']) for e in finished]}, "
          f"load {os.getloadavg()[0]:.1f}, downtime warnings {len(downtimes)}")


def manager_log(lab: LabState) -> list[dict[str, Any]]:
    lines = (lab.cluster_file.parent / "manager.log").read_text().splitlines()
    return [json.loads(x) for x in lines if x.startswith("{")]
