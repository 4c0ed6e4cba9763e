"""Property-based fuzzing of the agent's HTTP API from its own OpenAPI schema (schemathesis, issue 11).

Every operation gets generated requests, valid and invalid: no answer is a 5xx, every answer matches
the schema's documented status codes and shapes, every route refuses a request without the token,
and a request without a valid token changes nothing. Bounded: FUZZ_EXAMPLES per operation, long-polls
clamped to 0.1 s. The agent runs in-process over the recording driver double (it starts no QEMU), so
no generated request, whatever destination it names, makes any network traffic at all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from hypothesis import HealthCheck, settings
from schemathesis import checks

from consolidator.agent.api.app import create_app

FUZZ_EXAMPLES = 25
DRIVER = RecordingHypervisor()
AGENT = make_agent(Path(tempfile.mkdtemp(prefix="fuzz-agent-")), DRIVER)
APP = create_app(AGENT, TOKEN, adopt=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


def _bounded(case: Any) -> None:
    """A long-poll waits at most 0.1 s here (its schema allows 60 s, which would only slow the run)."""
    query = case.query or {}
    if "timeout_s" in query:
        try:
            query["timeout_s"] = min(float(query["timeout_s"]), 0.1)
        except (TypeError, ValueError):
            pass  # not a number: the agent must answer 422 to it


@schema.parametrize()
@FUZZ
def test_no_5xx_and_answers_match_the_schema(case: Any) -> None:
    _bounded(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_without_a_valid_token_every_route_is_401_and_nothing_changes(case: Any) -> None:
    _bounded(case)
    before = len(DRIVER.mutating_calls())
    for header in (None, "Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}"):
        headers = {} if header is None else {"Authorization": header}
        response = case.call(headers=headers)
        assert response.status_code == 401, (header, response.status_code, response.text[:200])
    assert len(DRIVER.mutating_calls()) == before
