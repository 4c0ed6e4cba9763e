"""The manager's API: the token on every route (and /metrics when configured), status shape, mode switch."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from consolidator.domain.events import MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.manager.api import create_app
from consolidator.manager.mode import ManagerMode
from consolidator.manager.telemetry import HostStatus, Telemetry, VmStatus

TOKEN = "manager-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Switch:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.calls: list[tuple[str, str]] = []

    def set_mode(self, mode: ManagerMode, by: str) -> None:
        self.calls.append((mode, by))
        self.telemetry.set_mode(mode, 1.0, by)


def _telemetry() -> Telemetry:
    t = Telemetry()
    t.set_cluster([HostStatus("pm0", "on", 60.0, 0.4, ("vm0",)), HostStatus("pm1", "suspended", 7.0, 0.0, ())],
                  [VmStatus("vm0", "pm0", 0.4)])
    t.add_power(1.0, {"pm0": 60.0, "pm1": 7.0}, 1.0, all_on_watts=113.0)
    t.on_event(MigrationStarted(2.0, "vm0", "pm0", "pm1", MigrationMethod.POSTCOPY))
    return t


def _client(metrics_auth: bool = False) -> tuple[TestClient, Switch]:
    t = _telemetry()
    switch = Switch(t)
    return TestClient(create_app(t, switch, TOKEN, metrics_auth)), switch


def test_every_route_needs_the_token() -> None:
    client, _ = _client(metrics_auth=True)
    # every data route; the dashboard's static page and the "/" redirect to it hold no data
    routes = [r for r in client.app.routes  # type: ignore[attr-defined]
              if isinstance(r, APIRoute) and r.include_in_schema]
    assert len(routes) >= 9
    for route in routes:
        for method in route.methods:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                answer = client.request(method, route.path, headers=headers, json={"mode": "auto"})
                assert answer.status_code == 401, (method, route.path, headers)


def test_metrics_open_unless_configured() -> None:
    client, _ = _client(metrics_auth=False)
    body = client.get("/metrics").text
    assert 'consolidator_host_power_state{host="pm1",state="suspended"} 1.0' in body
    assert 'consolidator_energy_saved_joules_total 46.0' in body
    assert client.get("/api/status").status_code == 401


def test_status_shape() -> None:
    client, _ = _client()
    status = client.get("/api/status", headers=AUTH).json()
    assert {"mode", "hosts", "vms", "migrations_running"} <= set(status)
    assert status["hosts"][0] | {} == {**status["hosts"][0], "name": "pm0", "state": "on", "watts": 60.0,
                                       "vms": ["vm0"]}
    assert status["vms"][0]["name"] == "vm0" and status["vms"][0]["host"] == "pm0"
    assert status["vms"][0]["load"] == 0.4 and status["migrations_running"] == 1


def test_mode_switch_is_recorded_and_validated() -> None:
    client, switch = _client()
    assert client.put("/api/mode", headers=AUTH, json={"mode": "chaos"}).status_code == 422
    answer = client.put("/api/mode", headers=AUTH, json={"mode": "auto"}).json()
    assert answer["mode"] == "auto" and answer["changes"][0]["to"] == "auto"
    assert switch.calls and switch.calls[0][0] == "auto"
    assert client.get("/api/status", headers=AUTH).json()["mode"] == "auto"


@pytest.mark.parametrize("path", ["/api/power?seconds=60", "/api/migrations", "/api/recommendations",
                                  "/api/refusals", "/api/energy"])
def test_dashboard_endpoints_answer_json(path: str) -> None:
    client, _ = _client()
    answer = client.get(path, headers=AUTH)
    assert answer.status_code == 200
    data: Any = answer.json()
    if path.startswith("/api/power"):
        assert data["hosts"]["pm0"] == [60.0] and data["total_watts"] == [67.0]
    if path == "/api/energy":
        assert data["saved_wh"] == pytest.approx(46.0 / 3600)


def test_finished_migration_in_timeline_and_histograms() -> None:
    t = _telemetry()
    t.on_event(MigrationFinished(5.0, "vm0", "pm0", "pm1", MigrationMethod.POSTCOPY, MigrationOutcome.COMPLETED,
                                 start_s=2.0, downtime_s=0.02))
    assert t.migration_timeline(10) == [{"vm": "vm0", "src": "pm0", "dst": "pm1", "method": "postcopy",
                                         "start_s": 2.0, "end_s": 5.0, "outcome": "completed",
                                         "downtime_s": 0.02, "detail": ""}]
    body = t.metrics.exposition().decode()
    assert 'consolidator_migrations_total{method="postcopy",outcome="completed"} 1.0' in body
    assert 'consolidator_migration_downtime_seconds_bucket{le="0.02",method="postcopy"} 1.0' in body
