"""``lab up`` / ``lab down``: the lab's hosts (namespaces + agents) and a record of what was made.

``lab.json`` in the lab folder lists the namespaces, bridge, agent pids and state folders, so
``down`` removes exactly those (and is idempotent: a second ``down`` finds nothing to remove).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from consolidator.agent.qemu import launch
from consolidator.domain.errors import UserError
from consolidator.experiments.lab.agents import (
    AgentSpec,
    start_agent,
    stop_agent,
    wait_ready,
    write_config,
    write_token,
)
from consolidator.experiments.lab.network import LabNetwork
from consolidator.manager.client import AgentEndpoint

log = logging.getLogger(__name__)

DEFAULT_DIR = Path("/var/tmp/consolidator-lab")
AGENT_PORT = 8700  # host i's agent answers on AGENT_PORT + i
MANAGEMENT_HOST = "127.0.0.1"  # the agents' API; migrations use the namespaces' addresses


@dataclass(frozen=True, slots=True)
class LabState:
    """What ``lab up`` made; stored as lab.json."""

    folder: str
    prefix: str
    link_bytes_per_s: float
    hosts: list[str]
    addresses: dict[str, str]
    netns: dict[str, str]
    pids: dict[str, int]
    agent_port: int = AGENT_PORT  # host i's agent answers on agent_port + i
    cpu_caps: dict[str, float] = field(default_factory=dict)  # host -> cores for all its VMs (capped hosts)

    @property
    def token_file(self) -> Path:
        return Path(self.folder) / "token"

    def state_dir(self, host: str) -> Path:
        return Path(self.folder) / host

    def endpoints(self) -> dict[str, AgentEndpoint]:
        token = self.token_file.read_text().strip()
        return {h: AgentEndpoint(h, self.agent_url(h), token) for h in self.hosts}

    def agent_url(self, host: str) -> str:
        return f"http://{MANAGEMENT_HOST}:{self.agent_port + self.hosts.index(host)}"

    @property
    def cluster_file(self) -> Path:
        return Path(self.folder) / "cluster.toml"

    def network(self) -> LabNetwork:
        return LabNetwork.plan(self.hosts, self.link_bytes_per_s, self.prefix)

    def save(self) -> None:
        (Path(self.folder) / "lab.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> LabState | None:
        path = folder / "lab.json"
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise UserError(f"not a lab record: {exc}", source=str(path)) from exc


def lab_up(folder: Path, hosts: list[str], link_bytes_per_s: float, resume_s: float, suspend_s: float,
           prefix: str = "clab", agent_port: int = AGENT_PORT,
           cpu_caps: dict[str, float] | None = None) -> LabState:
    """Make the namespaces and link, start one agent per host, wait until every agent answers.
    The lab's ``cluster.toml`` (for ``consolidator manager``) is written by ``write_cluster_config``."""
    if LabState.load(folder) is not None:
        raise UserError("a lab is already up here; run 'consolidator lab down' first", source=str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    net = LabNetwork.plan(hosts, link_bytes_per_s, prefix)
    state = LabState(str(folder), prefix, link_bytes_per_s, list(hosts),
                     {h.host: h.address for h in net.hosts}, {h.host: h.netns for h in net.hosts}, {},
                     agent_port, dict(cpu_caps or {}))
    state.save()  # before anything exists, so that a failed 'up' can be undone by 'down'
    net.setup()
    write_token(state.token_file)
    specs = {h: AgentSpec(h, MANAGEMENT_HOST, agent_port + i, state.state_dir(h), state.token_file,
                          netns=state.netns[h], migration_host=state.addresses[h], suspend_s=suspend_s,
                          resume_s=resume_s, peers={p: a for p, a in state.addresses.items() if p != h},
                          cpu_cap_cores=state.cpu_caps.get(h))
             for i, h in enumerate(hosts)}
    for h, spec in specs.items():
        config = write_config(spec, folder / f"{h}.toml")
        state.pids[h] = start_agent(spec, config, folder / f"{h}.log")
        state.save()

    async def ready() -> None:
        await asyncio.gather(*(wait_ready(specs[h], state.pids[h], timeout_s=60) for h in hosts))

    asyncio.run(ready())
    log.info("lab up: %d hosts in %s", len(hosts), folder)
    return state


def lab_down(folder: Path) -> list[str]:
    """Stop the agents, kill their QEMU processes, remove cgroups, namespaces, veths, bridge. Idempotent."""
    state = LabState.load(folder)
    if state is None:
        return []
    removed = []
    for host, pid in state.pids.items():
        if stop_agent(pid):
            removed.append(f"agent {host} (pid {pid})")
    for host in state.hosts:  # agents restarted since 'up' (a fault run, a person) are not in lab.json
        for pid in processes_naming(str(Path(state.folder) / f"{host}.toml")):
            if stop_agent(pid):
                removed.append(f"agent {host} (pid {pid}, restarted)")
    for host in state.hosts:
        removed += _kill_vms(state.state_dir(host))
    removed += state.network().teardown()
    for host in state.hosts:
        shutil.rmtree(state.state_dir(host), ignore_errors=True)
    (folder / "lab.json").unlink(missing_ok=True)
    return removed


def processes_naming(text: str) -> list[int]:
    """Pids of processes (ours or not) whose command line contains ``text`` as one argument or part of one."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(needle in arg for arg in argv):
            found.append(int(entry.name))
    return found


def _kill_vms(state_dir: Path) -> list[str]:
    """QEMU processes outlive their agent by design; ``down`` ends every QEMU whose files are in the
    host's state folder (by its command line, so one whose pid file is gone is found too), then every
    CPU cgroup of that state folder."""
    removed = []
    for pid in processes_naming(f"{state_dir.resolve()}/"):
        if launch.pid_alive(pid) and launch.is_qemu(pid):
            launch.kill(pid, signal.SIGKILL)
            removed.append(f"qemu (pid {pid})")
            deadline = time.monotonic() + 5.0
            while launch.pid_alive(pid) and time.monotonic() < deadline:  # its cgroup empties on exit
                time.sleep(0.05)
    for quota in (launch.CpuQuota(state_dir), launch.CpuQuota(state_dir, host_cap_cores=1.0)):  # uncapped, capped
        removed += _remove_groups(quota)
    return removed


def _remove_groups(quota: launch.CpuQuota) -> list[str]:
    removed = []
    for group in quota.groups():
        deadline = time.monotonic() + 5.0
        while not quota.remove(group) and time.monotonic() < deadline:  # busy until init reaps the QEMU
            time.sleep(0.05)
        path = quota.group_path(group)
        if path is None or not path.exists():
            removed.append(f"cgroup {group}")
        else:
            log.warning("cgroup %s still busy; left in place", path)
    return removed
