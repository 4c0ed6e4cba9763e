"""VM Controller: turns a Plan into port commands, safely.

It never double-books: a VM moves once at a time, a destination's memory is reserved from the
moment a move is admitted, a host is suspended only when nothing is on it or coming to it, and a
Warehouse node admits one incoming VM at a time through an admission ticket handed out first come,
first served (paper III-C). A move to a sleeping host wakes it and waits for its HostPowerChanged(ON).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from consolidator.control.ports import ClusterPort
from consolidator.domain.actions import Action, CancelMigration, Migrate, Plan, Suspend, Wake
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, Role, VmSpec

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Move:
    vm: int
    src: int
    dst: int
    method: MigrationMethod
    admitted_s: float
    started: bool = False
    ticket: bool = False


class VMController:
    def __init__(
        self,
        hosts: Sequence[HostSpec],
        vms: Sequence[VmSpec],
        placement: Mapping[str, str],
        cluster: ClusterPort,
        power_states: Mapping[str, PowerState],
        max_moves_per_host: int | None = None,
    ) -> None:
        self.hosts = tuple(hosts)
        self.vms = tuple(vms)
        self.cluster = cluster
        self.host_index = {h.name: i for i, h in enumerate(self.hosts)}
        self.vm_index = {v.name: i for i, v in enumerate(self.vms)}
        self.is_warehouse = np.array([h.role is Role.WAREHOUSE for h in self.hosts], dtype=bool)
        self.host_mem = np.array([h.mem_mib for h in self.hosts], dtype=np.float64)
        self.vm_mem = np.array([v.mem_mib for v in self.vms], dtype=np.float64)
        self.vm_at = np.array([self.host_index[placement[v.name]] for v in self.vms], dtype=np.int64)
        self.host_state = np.array(
            [power_states.get(h.name, PowerState.ON).code for h in self.hosts], dtype=np.int8
        )
        self.last_end = np.full(len(self.vms), -np.inf)
        self.lost = np.zeros(len(self.vms), dtype=bool)
        self.moves: dict[int, Move] = {}
        self.tickets: dict[int, int] = {}  # warehouse host -> VM holding its ticket
        self.queues: dict[int, list[int]] = {}  # warehouse host -> VMs waiting, first come first
        self.max_moves_per_host = max_moves_per_host
        self.rejected = 0
        self._mem_used = np.zeros(len(self.hosts))

    # -- views ------------------------------------------------------------------------------------
    def power_state(self, host: int | str) -> PowerState:
        """The power state the controller believes ``host`` (index or name) is in."""
        h = self.host_index[host] if isinstance(host, str) else host
        return PowerState.from_code(self.host_state[h])

    def planned_host(self) -> np.ndarray:
        out = self.vm_at.copy()
        for v, m in self.moves.items():
            out[v] = m.dst
        out[self.lost] = -1
        return out

    def runs_on(self) -> np.ndarray:
        """Where each VM executes: a started postcopy (or instant) move already runs at its destination."""
        out = self.vm_at.copy()
        for v, m in self.moves.items():
            if m.started and m.method in (MigrationMethod.POSTCOPY, MigrationMethod.INSTANT):
                out[v] = m.dst
        out[self.lost] = -1
        return out

    def move_sources(self) -> np.ndarray:
        """The source host of each VM's move in flight, -1 for a VM not moving."""
        out = np.full(len(self.vms), -1, dtype=np.int64)
        for v, m in self.moves.items():
            out[v] = m.src
        return out

    def busy(self) -> np.ndarray:
        busy = np.zeros(len(self.vms), dtype=bool)
        busy[list(self.moves)] = True
        return busy | self.lost

    def _committed_mem_all(self) -> np.ndarray:
        """Memory each host holds or has promised to incoming moves (MiB)."""
        placed = ~self.lost
        used = np.bincount(self.vm_at[placed], weights=self.vm_mem[placed], minlength=len(self.hosts))
        for m in self.moves.values():
            used[m.dst] += self.vm_mem[m.vm]
        return used

    def _moves_touching(self, host: int) -> int:
        return sum(1 for m in self.moves.values() if host in (m.src, m.dst))

    # -- acting -----------------------------------------------------------------------------------
    def apply(self, plan: Plan, now: float) -> list[Action]:
        """Carry out what is safe now; return the actions taken (deferred ones are retried by re-planning)."""
        done: list[Action] = []
        asked: set[tuple[int, int]] = set()  # (VM, destination) requested in this plan
        self._mem_used = self._committed_mem_all() if plan.actions else np.zeros(0)
        for action in plan.actions:
            if isinstance(action, Migrate):
                v = self.vm_index[action.vm]
                asked.add((v, self.host_index[action.dst]))
                ok = self._migrate(v, action, now)
            elif isinstance(action, Suspend):
                ok = self._suspend(self.host_index[action.host])
            elif isinstance(action, Wake):
                ok = self._wake(self.host_index[action.host])
            else:
                ok = self._cancel(action)
            if ok:
                done.append(action)
            else:
                self.rejected += 1
        for host, queue in self.queues.items():  # a VM that stopped asking for this host leaves its queue
            if queue:
                queue[:] = [v for v in queue if (v, host) in asked]
        return done

    def _migrate(self, v: int, action: Migrate, now: float) -> bool:
        src, dst = self.host_index[action.src], self.host_index[action.dst]
        if v in self.moves or self.lost[v] or self.vm_at[v] != src or src == dst:
            return False
        if self.power_state(dst) is PowerState.FAILED or self.power_state(src) is not PowerState.ON:
            return False
        if self._mem_used[dst] + self.vm_mem[v] > self.host_mem[dst]:
            return False
        if self.max_moves_per_host is not None and max(
            self._moves_touching(src), self._moves_touching(dst)
        ) >= self.max_moves_per_host:
            return False
        ticket = False
        if self.is_warehouse[dst] and action.method is not MigrationMethod.INSTANT:
            queue = self.queues.setdefault(dst, [])
            if v not in queue:
                queue.append(v)
            if dst in self.tickets or queue[0] != v:
                return False
            queue.pop(0)
            self.tickets[dst] = v
            ticket = True
        move = Move(v, src, dst, action.method, now, ticket=ticket)
        self.moves[v] = move
        self._mem_used[dst] += self.vm_mem[v]
        if self.power_state(dst) is PowerState.ON:
            self._start(move)
        elif self.power_state(dst) is PowerState.SUSPENDED:
            self._wake(dst)
        return True

    def _start(self, move: Move) -> None:
        move.started = True
        self.cluster.start_migration(
            self.vms[move.vm].name, self.hosts[move.src].name, self.hosts[move.dst].name, move.method
        )

    def _suspend(self, h: int) -> bool:
        if self.power_state(h) is not PowerState.ON:
            return False
        if np.any((self.vm_at == h) & ~self.lost) or self._moves_touching(h):
            return False
        self.host_state[h] = PowerState.SUSPENDING.code
        self.cluster.suspend_host(self.hosts[h].name)
        return True

    def _wake(self, h: int) -> bool:
        if self.power_state(h) is not PowerState.SUSPENDED:
            return False
        self.host_state[h] = PowerState.RESUMING.code
        self.cluster.wake_host(self.hosts[h].name)
        return True

    def _cancel(self, action: CancelMigration) -> bool:
        v = self.vm_index[action.vm]
        move = self.moves.get(v)
        if move is None or not move.started:
            return False
        self.cluster.cancel_migration(action.vm)
        return True

    # -- events -----------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, HostPowerChanged):
            self._on_power(event)
        elif isinstance(event, MigrationFinished):
            self._on_finished(event)
        elif isinstance(event, MigrationStarted):
            pass

    def _on_power(self, event: HostPowerChanged) -> None:
        h = self.host_index[event.host]
        self.host_state[h] = event.state.code
        waiting = [m for m in self.moves.values() if m.dst == h and not m.started]
        if event.state is PowerState.ON:
            for move in waiting:
                self._start(move)
        elif event.state is PowerState.SUSPENDED and waiting:
            self._wake(h)
        elif event.state is PowerState.FAILED:
            for move in waiting:
                self._release(move)
                log.warning("host %s failed: move of %s dropped", event.host, self.vms[move.vm].name)

    def _on_finished(self, event: MigrationFinished) -> None:
        v = self.vm_index[event.vm]
        move = self.moves.get(v)
        if move is None:
            log.warning("migration of %s finished but was not tracked", event.vm)
            return
        self._release(move)
        self.last_end[v] = event.t_s
        if event.outcome is MigrationOutcome.COMPLETED:
            self.vm_at[v] = move.dst
        elif event.outcome is MigrationOutcome.LOST:
            self.lost[v] = True
            log.error("VM %s lost: %s", event.vm, event.detail)

    def _release(self, move: Move) -> None:
        self.moves.pop(move.vm, None)
        if move.ticket and self.tickets.get(move.dst) == move.vm:
            del self.tickets[move.dst]
