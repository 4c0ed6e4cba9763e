"""``lab down`` finds what a lab started even after its agents were restarted (issue 11): an agent
whose pid is not in lab.json, a QEMU whose pid file is gone, and the CPU cgroups of the state folder.

Real processes: an agent (no VM) and a QEMU without a guest (``-machine none``), under names and
ports unique to this test run; no namespace is made (the lab record's network names none that exist).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from consolidator.agent.qemu import launch
from consolidator.experiments.lab.agents import AgentSpec, pid_alive, start_agent, wait_ready, write_config
from consolidator.experiments.lab.lab import LabState, lab_down


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lab_down_finds_restarted_agents_orphaned_qemu_and_cgroups(tmp_path: Path) -> None:
    reason = launch.why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    folder = Path(f"/tmp/cld-{os.getpid()}")  # short: unix socket paths of the state folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    state = LabState(str(folder), f"cx{os.getpid() % 10000}", 120e6, ["pm0"], {"pm0": "10.99.0.10"},
                     {"pm0": f"cx{os.getpid() % 10000}-pm0"}, {})
    (folder / "token").write_text("lab-down-test-token-0123456789\n")
    spec = AgentSpec("pm0", "127.0.0.1", _free_port(), state.state_dir("pm0"), state.token_file)
    config = write_config(spec, folder / "pm0.toml")
    started: list[int] = []
    try:
        first = start_agent(spec, config, folder / "pm0.log")
        started.append(first)
        asyncio.run(wait_ready(spec, first, timeout_s=60))
        state.pids["pm0"] = first
        state.save()
        os.kill(first, 9)  # the agent dies; someone starts a new one, which lab.json does not know
        os.waitpid(first, 0)
        second = start_agent(spec, config, folder / "pm0.log")
        started.append(second)
        asyncio.run(wait_ready(spec, second, timeout_s=60))
        vm = state.state_dir("pm0") / "vm9"
        vm.mkdir(parents=True)
        subprocess.run(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S",
                        "-pidfile", str(vm / "qemu.pid"), "-daemonize"], check=True, timeout=30)
        qemu = launch.read_pid(launch.VmPaths(vm))
        assert qemu is not None and launch.is_qemu(qemu)
        quota = launch.CpuQuota(state.state_dir("pm0"))
        group = quota.apply("vm9", qemu, 0.5)
        (vm / "qemu.pid").unlink()  # its record is gone too
        removed = lab_down(folder)
        assert f"agent pm0 (pid {second}, restarted)" in removed
        assert f"qemu (pid {qemu})" in removed
        assert not pid_alive(second) and not launch.pid_alive(qemu)
        if group is not None:  # a writable cpu controller here: the VM ran in a group, now removed
            assert "cgroup vm9" in removed and not group.exists()
        assert lab_down(folder) == []  # idempotent
    finally:
        for pid in started:
            if pid_alive(pid):
                os.kill(pid, 9)
        shutil.rmtree(folder, ignore_errors=True)
