"""Property-based fuzzing of the manager's HTTP API from its OpenAPI schema (schemathesis, issue 11):
no 5xx, answers as the schema documents them, every route 401 without a valid token and no mode
change without one. In-process (ASGI) over a Telemetry with a small cluster: no network traffic."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from consolidator.domain.events import MigrationStarted
from consolidator.domain.types import MigrationMethod
from consolidator.manager.api import create_app
from consolidator.manager.mode import ManagerMode
from consolidator.manager.telemetry import HostStatus, Telemetry, VmStatus

TOKEN = "manager-fuzz-token-0123456789"
FUZZ_EXAMPLES = 25


class Switch:
    """The service's mode switch, recorded (the API's only state change)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.calls: list[tuple[str, str]] = []

    def set_mode(self, mode: ManagerMode, by: str) -> None:
        self.calls.append((mode, by))
        self.telemetry.set_mode(mode, 1.0, by)


TELEMETRY = Telemetry()
TELEMETRY.set_cluster([HostStatus("pm0", "on", 60.0, 0.4, ("vm0",)), HostStatus("pm1", "suspended", 7.0, 0.0, ())],
                      [VmStatus("vm0", "pm0", 0.4)])
TELEMETRY.add_power(1.0, {"pm0": 60.0, "pm1": 7.0}, 1.0, all_on_watts=113.0)
TELEMETRY.on_event(MigrationStarted(2.0, "vm0", "pm0", "pm1", MigrationMethod.POSTCOPY))
SWITCH = Switch(TELEMETRY)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(TELEMETRY, SWITCH, TOKEN, metrics_auth=True))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@schema.parametrize()
@FUZZ
def test_no_5xx_and_answers_match_the_schema(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_without_a_valid_token_every_route_is_401_and_the_mode_stays(case: Any) -> None:
    before = len(SWITCH.calls)
    for header in (None, "Bearer wrong-token-0123456789abcdef", TOKEN):
        response = case.call(headers={} if header is None else {"Authorization": header})
        assert response.status_code == 401, (header, response.status_code, response.text[:200])
    assert len(SWITCH.calls) == before
