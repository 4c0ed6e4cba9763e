"""Fixtures for the agent tests: an agent over the recording driver double, served in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_doubles import RecordingHypervisor
from fastapi.testclient import TestClient

from consolidator.agent.api.app import create_app
from consolidator.agent.api.config import parse_config
from consolidator.agent.host import HostAgent

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def driver() -> RecordingHypervisor:
    return RecordingHypervisor()


def make_agent(tmp_path: Path, driver: RecordingHypervisor, **overrides: object) -> HostAgent:
    data: dict[str, object] = {
        "name": "pm1", "token": TOKEN, "emulated": True, "state_dir": str(tmp_path), "cores": 1.0,
        "max_vm_mem_mib": 1024, "power": {"suspend_s": 0.05, "resume_s": 0.05},
    }
    data.update(overrides)
    return HostAgent(parse_config(data, "test.toml"), driver)


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
