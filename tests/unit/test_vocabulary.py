"""The typed state vocabulary (domain.types): parsed at the edges, serialised as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from consolidator.domain.events import HostPowerChanged
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState, Role
from consolidator.protocol.schemas import EventKind, EventView
from consolidator.storage.records import decode_event, encode_event


@pytest.mark.parametrize(("cls", "text"), [
    (PowerState, "suspended"), (MigrationOutcome, "cancelled"), (MigrationMethod, "hybrid"), (Role, "warehouse"),
])
def test_parse_returns_the_member_whose_value_is_the_text(cls: type[PowerState], text: str) -> None:
    member = cls.parse(text)
    assert member.value == text and type(member) is cls


@pytest.mark.parametrize("text", ["asleep", "ON", "", None, 2])
def test_parse_names_the_field_and_the_known_values(text: object) -> None:
    with pytest.raises(ValueError, match=r"unknown hosts\.pm0\.state .* \(expected one of: on, suspending, "
                                         r"suspended, resuming, failed\)"):
        PowerState.parse(text, "hosts.pm0.state")


def test_serialised_forms_are_the_values() -> None:
    """JSON and CSV carry the plain words, as before the enums became StrEnums."""
    assert json.dumps({"s": PowerState.SUSPENDED, "o": MigrationOutcome.COMPLETED}) == \
        '{"s": "suspended", "o": "completed"}'
    assert f"{PowerState.RESUMING}" == "resuming" and str(MigrationMethod.POSTCOPY) == "postcopy"


def test_power_codes_keep_their_order_and_round_trip() -> None:
    """The int8 codes of state arrays: 0..4 in declaration order (the simulator's arrays rely on it)."""
    assert [s.code for s in PowerState] == [0, 1, 2, 3, 4]
    assert PowerState.SUSPENDED.code == 2
    for state in PowerState:
        assert PowerState.from_code(state.code) is state
        assert PowerState.from_code(np.int8(state.code)) is state


def test_stored_event_round_trips_and_an_unknown_state_is_named() -> None:
    ev = HostPowerChanged(3.0, "pm1", PowerState.SUSPENDING, "asked")
    row = encode_event(ev)
    assert json.loads(row["payload"])["state"] == "suspending"
    assert decode_event(row["kind"], row["payload"]) == ev
    bad = row["payload"].replace('"suspending"', '"hibernating"')
    with pytest.raises(ValueError, match=r"unknown HostPowerChanged\.state 'hibernating'"):
        decode_event(row["kind"], bad)


def test_agent_event_kinds_parse_from_json_and_an_unknown_kind_is_refused() -> None:
    """The agent's event stream carries ``kind`` words; the manager compares EventKind members."""
    line = '{"seq": 1, "t_wall_s": 5.0, "kind": "migration_paused", "host": "pm0", "vm": "vm0"}'
    event = EventView.model_validate_json(line)
    assert event.kind is EventKind.MIGRATION_PAUSED
    assert json.loads(event.model_dump_json())["kind"] == "migration_paused"
    with pytest.raises(ValidationError, match="kind"):
        EventView.model_validate_json(line.replace("migration_paused", "migration_exploded"))
