"""Fixtures for the agent tests: an agent over the recording driver double, served in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from fastapi.testclient import TestClient
from live_lab import Lab, live_lab

from consolidator.agent.api.app import create_app
from consolidator.agent.host import HostAgent

MANAGER_TESTS = str(Path(__file__).resolve().parents[1] / "manager")  # service_doubles: agents + a manager
if MANAGER_TESTS not in sys.path:
    sys.path.append(MANAGER_TESTS)

__all__ = ["TOKEN", "make_agent"]  # re-exported; import them from agent_doubles (a unique module name)


@pytest.fixture
def driver() -> RecordingHypervisor:
    return RecordingHypervisor()


@pytest.fixture
def agent(tmp_path: Path, driver: RecordingHypervisor) -> HostAgent:
    return make_agent(tmp_path, driver)


@pytest.fixture
def client(agent: HostAgent) -> Iterator[TestClient]:
    with TestClient(create_app(agent, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture
def anon(agent: HostAgent) -> Iterator[TestClient]:
    with TestClient(create_app(agent, TOKEN)) as c:
        yield c


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Two real agent hosts (QEMU in namespaces); skips only where QEMU cannot run here."""
    yield from live_lab()
