"""Start and stop host-agent processes and wait for them.

Agents are started as ``python -m consolidator.cli.main agent --config host.toml`` with an argv
list, in a session of their own, and stopped by pid only. A lab agent runs in the root namespace
(its API on the management address) and puts its QEMU processes in the host's network namespace
(the driver's ``netns``), where they listen for incoming migrations on the host's migration
address. Why not the agent in the namespace too: ``ip netns exec`` remounts /sys, which hides the
cgroup tree that the driver needs for the VMs' CPU quotas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from consolidator.manager.client import AgentClient, AgentEndpoint, AgentError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent to run: its host.toml values (written by ``write_config``) and its namespace."""

    name: str
    listen_host: str
    port: int
    state_dir: Path
    token_file: Path
    netns: str | None = None  # QEMU's network namespace
    migration_host: str | None = None  # incoming migrations listen here (default: listen_host)
    emulated: bool = True
    cores: float = 1.0
    mem_mib: int = 4096
    suspend_s: float = 5.0
    resume_s: float = 5.0
    accel: str = "auto"
    cpu_cap_cores: float | None = None  # all the host's VMs together (a capped lab host)
    peers: dict[str, str] = field(default_factory=dict)  # the hosts it may migrate to: name -> address

    @property
    def base_url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    def endpoint(self) -> AgentEndpoint:
        return AgentEndpoint(self.name, self.base_url, self.token_file.read_text().strip())


def write_token(path: Path) -> None:
    """A fresh random token, readable by root only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(os.urandom(24).hex() + "\n")


def write_config(spec: AgentSpec, path: Path) -> Path:
    """The agent's host.toml (names and paths here are ours: no quoting beyond plain TOML strings)."""
    lines = [
        f'name = "{spec.name}"', f'listen_host = "{spec.listen_host}"', f"port = {spec.port}",
        f'token_file = "{spec.token_file}"', f"emulated = {str(spec.emulated).lower()}",
        f'migration_listen_host = "{spec.migration_host or spec.listen_host}"',
        f'state_dir = "{spec.state_dir}"',
        f"cores = {spec.cores}", f"mem_mib = {spec.mem_mib}", "",
        "[migration_peers]", *(f'{name} = "{address}"' for name, address in sorted(spec.peers.items())), "",
        "[power]", f"suspend_s = {spec.suspend_s}", f"resume_s = {spec.resume_s}", "",
        # boot timeout: five TCG guests booting at once on a machine at load 15 took over 60 s
        "[driver]", f'accel = "{spec.accel}"', "boot_timeout_s = 240",
        *([f'netns = "{spec.netns}"'] if spec.netns else []),
        *([f"host_cpu_cap_cores = {spec.cpu_cap_cores}"] if spec.cpu_cap_cores is not None else []), "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def start_agent(spec: AgentSpec, config: Path, log_file: Path) -> int:
    """Start the agent in the background; returns its pid (also written next to its log)."""
    argv = [sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(config)]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    log_file.with_suffix(".pid").write_text(str(proc.pid))
    return proc.pid


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop_agent(pid: int, timeout_s: float = 10.0) -> bool:
    """SIGTERM the agent (its QEMU processes keep running), SIGKILL after ``timeout_s``."""
    if not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return True


async def wait_ready(spec: AgentSpec, pid: int, timeout_s: float = 30.0) -> None:
    """Until the agent answers an authenticated call; raises if it exits or does not answer."""
    client = AgentClient(spec.endpoint(), timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                await client.host_stats()
                return
            except AgentError as exc:
                if not pid_alive(pid):
                    raise RuntimeError(f"agent {spec.name} exited; see its log") from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(f"agent {spec.name} did not answer in {timeout_s} s: {exc}") from exc
                await asyncio.sleep(0.2)
    finally:
        await client.close()
