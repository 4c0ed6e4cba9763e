"""``consolidator manager`` as a process over two real agent processes (emulated hosts, no VM, so no
QEMU): --listen, the token on /api, open /metrics, mode switch, JSON logs, SIGTERM -> exit 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from consolidator.experiments.lab.agents import stop_agent

TOKEN = "manager-process-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agent(folder: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    config = folder / f"{name}.toml"
    config.write_text(f'name = "{name}"\nlisten_host = "127.0.0.1"\nport = {port}\ntoken_file = "{folder}/tok"\n'
                      f'emulated = true\nstate_dir = "{folder}/{name}"\ncores = 1.0\n'
                      '[power]\nsuspend_s = 0.1\nresume_s = 0.1\n')
    proc = subprocess.Popen([sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def _wait(url: str, headers: dict[str, str], timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = httpx.get(url, headers=headers, timeout=2.0)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.2)


def test_manager_process_serves_status_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text(TOKEN)
    agents = {h: _agent(tmp_path, h) for h in ("pm0", "pm1")}
    listen = _free_port()
    hosts = "".join(f'[hosts.{h}]\ndriver = "agent"\nurl = "http://127.0.0.1:{port}"\ntoken_file = "{tmp_path}/tok"\n'
                    f'role = "{"warehouse" if h == "pm0" else "server"}"\ncores = 1.0\n'
                    for h, (_, port) in agents.items())
    (tmp_path / "cluster.toml").write_text(
        f'run_store = "{tmp_path}/run.sqlite"\napi_token_file = "{tmp_path}/tok"\nperiod_s = 0.2\n'
        f'window_periods = 2\n{hosts}')
    try:
        for _, port in agents.values():
            _wait(f"http://127.0.0.1:{port}/v1/host/stats", {"Authorization": f"Bearer {TOKEN}"})
        manager = subprocess.Popen([sys.executable, "-m", "consolidator.cli.main", "manager", "--config",
                                    str(tmp_path / "cluster.toml"), "--listen", f"127.0.0.1:{listen}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        base, auth = f"http://127.0.0.1:{listen}", {"Authorization": f"Bearer {TOKEN}"}
        status = _wait(f"{base}/api/status", auth).json()
        assert status["mode"] == "recommend" and status["migrations_running"] == 0
        assert sorted(h["name"] for h in status["hosts"]) == ["pm0", "pm1"] and status["vms"] == []
        assert httpx.get(f"{base}/api/status").status_code == 401
        metrics = httpx.get(f"{base}/metrics").text
        assert 'consolidator_host_power_state{host="pm0",state="on"} 1.0' in metrics
        switched = httpx.put(f"{base}/api/mode", headers=auth, json={"mode": "auto"})
        assert switched.status_code == 200 and switched.json()["mode"] == "auto"
        time.sleep(1.0)  # a few periods in auto: the empty server is suspended
        states = {h["name"]: h["state"] for h in httpx.get(f"{base}/api/status", headers=auth).json()["hosts"]}
        assert states["pm1"] in ("suspending", "suspended")
        manager.send_signal(signal.SIGTERM)
        _, err = manager.communicate(timeout=30)
        assert manager.returncode == 0, err.decode()[-2000:]
        logs = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
        assert any("mode recommend -> auto" in e["msg"] for e in logs)
        assert logs[-1]["msg"].startswith("manager stopped") and {"t", "level", "logger"} <= set(logs[-1])
    finally:
        if "manager" in locals() and manager.poll() is None:  # a failed assertion must not leave it running
            manager.kill()
            manager.wait(timeout=30)
        for proc, _ in agents.values():
            stop_agent(proc.pid)
