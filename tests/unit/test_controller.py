"""The VM Controller: admission tickets, no double-booking, wake-then-migrate, safe suspends.

The cluster here is a recorder of port calls (a test double: the controller's contract is what it
asks of the port; the simulator and the live cluster both run the same controller in e2e tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consolidator.control.controller import VMController
from consolidator.domain.actions import Migrate, Plan, Suspend, Wake
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, Role, VmSpec

PC = MigrationMethod.POSTCOPY


@dataclass
class RecordingPort:
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        self.calls.append(("migrate", vm, src, dst))

    def cancel_migration(self, vm: str) -> None:
        self.calls.append(("cancel", vm))

    def suspend_host(self, host: str) -> None:
        self.calls.append(("suspend", host))

    def wake_host(self, host: str) -> None:
        self.calls.append(("wake", host))


def make(states: dict[str, PowerState] | None = None, placement: dict[str, str] | None = None,
         mem_mib: int = 16384) -> tuple[VMController, RecordingPort]:
    hosts = [HostSpec("W", Role.WAREHOUSE, mem_mib=mem_mib), HostSpec("S1", Role.SERVER, mem_mib=mem_mib),
             HostSpec("S2", Role.SERVER, mem_mib=mem_mib)]
    vms = [VmSpec(f"v{i}") for i in range(3)]
    port = RecordingPort()
    placement = placement or {"v0": "S1", "v1": "S2", "v2": "W"}
    return VMController(hosts, vms, placement, port, states or {}), port


def finished(vm: str, src: str, dst: str, t: float, outcome: MigrationOutcome = MigrationOutcome.COMPLETED
             ) -> MigrationFinished:
    return MigrationFinished(t, vm, src, dst, PC, outcome, t - 5)


def test_one_admission_ticket_per_warehouse_first_come_first_served() -> None:
    c, port = make()
    c.apply(Plan((Migrate("v0", "S1", "W", PC), Migrate("v1", "S2", "W", PC))), 0.0)
    assert port.calls == [("migrate", "v0", "S1", "W")]
    c.apply(Plan((Migrate("v1", "S2", "W", PC),)), 1.0)  # v1 waits: v0 holds the ticket
    assert len(port.calls) == 1
    c.on_event(finished("v0", "S1", "W", 2.0))
    c.apply(Plan((Migrate("v1", "S2", "W", PC),)), 3.0)
    assert port.calls[-1] == ("migrate", "v1", "S2", "W")


def test_queue_drops_a_vm_that_stopped_asking() -> None:
    c, port = make()
    c.apply(Plan((Migrate("v0", "S1", "W", PC), Migrate("v1", "S2", "W", PC))), 0.0)
    c.on_event(finished("v0", "S1", "W", 2.0))
    c.apply(Plan(()), 3.0)  # v1 no longer wants to move
    assert c.queues[0] == []


def test_a_vm_moves_once_at_a_time_and_only_from_where_it_is() -> None:
    c, port = make()
    c.apply(Plan((Migrate("v0", "S1", "S2", PC), Migrate("v0", "S1", "W", PC), Migrate("v1", "W", "S1", PC))), 0.0)
    assert port.calls == [("migrate", "v0", "S1", "S2")]


def test_memory_is_reserved_at_admission() -> None:
    c, port = make(mem_mib=2048, placement={"v0": "S1", "v1": "S2", "v2": "W"})
    c.apply(Plan((Migrate("v0", "S1", "S2", PC),)), 0.0)  # S2: v1 (1 GiB) + v0 (1 GiB) = 2 GiB: fits
    c.apply(Plan((Migrate("v2", "W", "S2", PC),)), 0.0)  # a third would not
    assert port.calls == [("migrate", "v0", "S1", "S2")]


def test_migration_to_a_sleeping_host_wakes_it_and_starts_when_it_is_on() -> None:
    c, port = make(states={"S2": PowerState.SUSPENDED}, placement={"v0": "S1", "v1": "S1", "v2": "W"})
    c.apply(Plan((Migrate("v0", "S1", "S2", PC),)), 0.0)
    assert port.calls == [("wake", "S2")]
    c.on_event(HostPowerChanged(5.0, "S2", PowerState.ON))
    assert port.calls[-1] == ("migrate", "v0", "S1", "S2")


def test_a_host_is_suspended_only_when_nothing_is_on_or_coming_to_it() -> None:
    c, port = make(placement={"v0": "S1", "v1": "S1", "v2": "W"})
    c.apply(Plan((Suspend("S1"), Suspend("W"))), 0.0)
    assert port.calls == []
    c.apply(Plan((Migrate("v2", "W", "S2", PC), Suspend("S2"), Suspend("W"))), 1.0)
    assert ("suspend", "S2") not in port.calls and ("suspend", "W") not in port.calls
    c.on_event(finished("v2", "W", "S2", 5.0))
    c.apply(Plan((Suspend("W"), Suspend("W"))), 6.0)
    assert port.calls.count(("suspend", "W")) == 1


def test_wake_only_a_sleeping_host() -> None:
    c, port = make(states={"S2": PowerState.SUSPENDED})
    c.apply(Plan((Wake("S1"), Wake("S2"), Wake("S2"))), 0.0)
    assert port.calls == [("wake", "S2")]


def test_cancelled_migration_leaves_the_vm_at_its_source() -> None:
    c, _ = make()
    c.apply(Plan((Migrate("v0", "S1", "W", PC),)), 0.0)
    c.on_event(finished("v0", "S1", "W", 60.0, MigrationOutcome.CANCELLED))
    assert c.planned_host()[0] == 1 and not c.busy()[0] and c.tickets == {}
    assert c.last_end[0] == 60.0


def test_failed_destination_drops_waiting_moves() -> None:
    c, port = make(states={"S2": PowerState.SUSPENDED}, placement={"v0": "S1", "v1": "S1", "v2": "W"})
    c.apply(Plan((Migrate("v0", "S1", "S2", PC),)), 0.0)
    c.on_event(HostPowerChanged(10.0, "S2", PowerState.FAILED))
    assert not c.busy()[0]
    c.apply(Plan((Migrate("v0", "S1", "S2", PC),)), 11.0)
    assert ("migrate", "v0", "S1", "S2") not in port.calls


def test_a_lost_vm_is_gone_for_good() -> None:
    """The manager's LOST verdict (a postcopy whose other half died): released, never placed nor moved
    again, and its host can be suspended once nothing else runs there."""
    c, port = make(placement={"v0": "S1", "v1": "S2", "v2": "W"})
    c.apply(Plan((Migrate("v0", "S1", "W", PC),)), 0.0)
    c.on_event(finished("v0", "S1", "W", 3.0, MigrationOutcome.LOST))
    assert c.lost[0] and c.planned_host()[0] == -1 and c.busy()[0] and c.tickets == {}
    c.apply(Plan((Migrate("v0", "S1", "S2", PC), Suspend("S1"))), 4.0)
    assert ("migrate", "v0", "S1", "S2") not in port.calls and ("suspend", "S1") in port.calls
