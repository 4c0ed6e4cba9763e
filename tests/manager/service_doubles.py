"""A small cluster of in-process agents over the driver double, and a manager configured for it.

The agents are the real HostAgent and HTTP API served through httpx's ASGI transport; only the VM
driver is a double (RecordingHypervisor, tests/agent/agent_doubles.py: it starts no QEMU). The real
QEMU path is tests/manager/test_manager_qemu.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from agent_doubles import TOKEN, RecordingHypervisor, make_agent

from consolidator.agent.api.app import create_app
from consolidator.agent.host import HostAgent
from consolidator.manager.client import AgentEndpoint
from consolidator.manager.config import ClusterConfig, parse_cluster_config
from consolidator.manager.engine import AgentEngine, Engine
from consolidator.manager.service import Hooks, ManagerService

HOSTS = ("pm0", "pm1", "pm2")


class Switchable(httpx.AsyncBaseTransport):
    """An agent's transport that can stop answering (``down = True``), as a crashed host would."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("host down (test)", request=request)
        return await self.inner.handle_async_request(request)


class Cluster:
    """Emulated hosts (three by default; pm0 the warehouse), their agents, and transports for engines."""

    def __init__(self, tmp_path: Path, migrate_s: float = 0.05, emulated: bool = True,
                 hosts: tuple[str, ...] = HOSTS) -> None:
        self.hosts = hosts
        self.fabric: dict[str, RecordingHypervisor] = {}
        self.drivers = {h: RecordingHypervisor(migrate_s=migrate_s, fabric=self.fabric, port=49152 + i)
                        for i, h in enumerate(hosts)}
        self.agents: dict[str, HostAgent] = {
            h: make_agent(tmp_path / h, d, name=h, max_vm_mem_mib=1024, emulated=emulated)
            for h, d in self.drivers.items()}
        self.transports = {h: Switchable(httpx.ASGITransport(app=create_app(a, TOKEN, adopt=False)))
                           for h, a in self.agents.items()}
        (tmp_path / "tok").write_text(TOKEN)
        self.folder = tmp_path

    def engines(self) -> dict[str, Engine]:
        return {h: AgentEngine(AgentEndpoint(h, "http://agent", TOKEN), transport=self.transports[h])
                for h in self.hosts}

    def migrations(self) -> list[str]:
        """Every migrate call any driver received, as "vm src->dst"."""
        return [f"{args[0].vm} {h}->{args[0].dst_uri}" for h, d in self.drivers.items()
                for name, args in d.calls if name == "migrate"]  # type: ignore[attr-defined]

    def config(self, **overrides: Any) -> ClusterConfig:
        data: dict[str, Any] = {
            "mode": "auto", "period_s": 0.1, "window_periods": 2,
            "run_store": str(self.folder / "run.sqlite"), "api_token_file": str(self.folder / "tok"),
            "policy": {"name": "paper", "args": {"hold_s": 0.5}},
            "limits": {"min_hold_s": 0, "drain_timeout_s": 5},
            "hosts": {h: {"driver": "agent", "url": "http://agent", "token_file": str(self.folder / "tok"),
                          "role": "warehouse" if h == "pm0" else "server", "cores": 1.0, "mem_mib": 4096}
                      for h in self.hosts},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return parse_cluster_config(data, "test")

    def manager(self, hooks: Hooks | None = None, **overrides: Any) -> ManagerService:
        return ManagerService(self.config(**overrides), engines=self.engines(), hooks=hooks)
