"""Operator rules: a pure filter between the Relocation Planner and the VM Controller.

``gate(plan, snapshot, book, history, in_flight)`` returns the plan the controller may carry out and
one ``RuleRefusal`` per action a rule refused or changed (so an operator sees why a VM did not move):

- per VM: ``pin`` (never moved), ``exclude`` (invisible to planning: never moved), ``never_postcopy``
  (a postcopy or hybrid move is sent by precopy instead);
- per host: ``maintenance`` (evacuated to other hosts that are on, never woken, never a target,
  never suspended by the manager);
- ``reserve_hosts``: that many empty hosts stay awake (suspends refused, a sleeping host woken);
- anti-thrashing: minimum hold after a move, moves per VM per hour, concurrent migrations per
  host, migrations started per minute in the cluster, and a retry cap with doubling back-off for
  failed moves (per VM) and failed wakes (per host).

Time is the snapshot's ``t_s``; ``History`` learns from the loop's events and from the moves the
controller admitted (``note_started``). Nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend, Wake
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState

HOUR_S = 3600.0
MINUTE_S = 60.0
EVACUATION_LOAD_SHARE = 0.9  # an evacuated VM goes only where the host stays under 90 % of its cores


@dataclass(frozen=True, slots=True)
class RuleBook:
    pinned: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    never_postcopy: frozenset[str] = frozenset()
    maintenance: frozenset[str] = frozenset()
    reserve_hosts: int = 0
    min_hold_s: float = 0.0
    max_moves_per_vm_per_hour: int = 1_000_000
    max_migrations_per_host: int = 1_000_000
    max_migrations_per_minute: int = 1_000_000
    move_retry_max: int = 1_000_000
    move_backoff_s: float = 0.0
    wake_retry_max: int = 1_000_000
    wake_backoff_s: float = 0.0
    give_up_s: float = HOUR_S


@dataclass(frozen=True, slots=True)
class RuleRefusal:
    rule: str
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class Gated:
    plan: Plan
    refusals: tuple[RuleRefusal, ...] = ()


@dataclass(slots=True)
class Failures:
    count: int = 0
    last_s: float = float("-inf")


@dataclass
class History:
    """What the rules remember: move starts (per VM and cluster-wide) and failed moves and wakes."""

    starts: dict[str, list[float]] = field(default_factory=dict)
    all_starts: list[float] = field(default_factory=list)
    move_failures: dict[str, Failures] = field(default_factory=dict)
    wake_failures: dict[str, Failures] = field(default_factory=dict)

    def note_started(self, vm: str, t_s: float) -> None:
        self.starts.setdefault(vm, []).append(t_s)
        self.all_starts.append(t_s)
        self.all_starts[:] = [t for t in self.all_starts if t > t_s - HOUR_S]
        self.starts[vm][:] = [t for t in self.starts[vm] if t > t_s - HOUR_S]

    def replay(self, events: Sequence[Event]) -> None:
        """Rebuild from a run's stored events (a restarted manager): starts and failures."""
        for event in events:
            if isinstance(event, MigrationFinished):
                self.note_started(event.vm, event.start_s)
            self.on_event(event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, MigrationFinished):
            if event.outcome is MigrationOutcome.COMPLETED:
                self.move_failures.pop(event.vm, None)
            else:
                f = self.move_failures.setdefault(event.vm, Failures())
                f.count, f.last_s = f.count + 1, event.t_s
        elif isinstance(event, HostPowerChanged):
            if event.state is PowerState.FAILED and event.detail.startswith("wake failed"):
                f = self.wake_failures.setdefault(event.host, Failures())
                f.count, f.last_s = f.count + 1, event.t_s
            elif event.state is PowerState.ON:
                self.wake_failures.pop(event.host, None)


def _backoff(f: Failures | None, now: float, cap: int, backoff_s: float, give_up_s: float,
             what: str) -> tuple[str, str] | None:
    """(rule, reason) if a retry is not allowed yet, else None."""
    if f is None or f.count == 0:
        return None
    if f.count >= cap and now - f.last_s < give_up_s:
        return f"{what}_retry_cap", f"{f.count} failures; next try after {f.last_s + give_up_s:.0f} s"
    wait = backoff_s * 2 ** (f.count - 1)
    if now - f.last_s < wait:
        return f"{what}_backoff", f"{f.count} failure(s); back-off until {f.last_s + wait:.0f} s"
    return None


class _Gate:
    """One gating pass (the counters of moves admitted in this plan live here)."""

    def __init__(self, s: Snapshot, book: RuleBook, history: History,
                 in_flight: Mapping[str, tuple[str, str]]) -> None:
        self.s, self.book, self.h, self.now = s, book, history, s.t_s
        self.index = {name: i for i, name in enumerate(s.host_names)}
        self.vm_index = {name: i for i, name in enumerate(s.vm_names)}
        self.per_host: dict[str, int] = {}
        for src, dst in in_flight.values():
            for host in (src, dst):
                self.per_host[host] = self.per_host.get(host, 0) + 1
        self.recent = sum(1 for t in history.all_starts if t > self.now - MINUTE_S)
        self.counts = s.host_vm_count()
        self.spare_awake = [h for h in range(len(s.host_names))
                            if s.host_state[h] in (PowerState.ON.code, PowerState.RESUMING.code) and self.counts[h] == 0
                            and s.host_names[h] not in book.maintenance]
        self.refusals: list[RuleRefusal] = []

    def refuse(self, rule: str, action: Action, reason: str) -> None:
        self.refusals.append(RuleRefusal(rule, action, reason))

    def migrate(self, m: Migrate) -> Migrate | None:
        rule = self._migrate_rule(m)
        if rule is not None:
            self.refuse(rule[0], m, rule[1])
            return None
        if m.vm in self.book.never_postcopy and m.method in (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID):
            self.refuse("never_postcopy", m, "sent by precopy instead")
            m = replace(m, method=MigrationMethod.PRECOPY)
        for host in (m.src, m.dst):
            self.per_host[host] = self.per_host.get(host, 0) + 1
        self.recent += 1
        return m

    def _migrate_rule(self, m: Migrate) -> tuple[str, str] | None:
        b, now = self.book, self.now
        if m.vm in b.excluded:
            return "exclude", "excluded from planning"
        if m.vm in b.pinned:
            return "pin", "pinned to its host"
        if m.dst in b.maintenance:
            return "maintenance", f"{m.dst} is in maintenance"
        v = self.vm_index.get(m.vm)
        if v is not None and now - float(self.s.vm_last_move_end_s[v]) < b.min_hold_s:
            return "min_hold", f"moved {now - float(self.s.vm_last_move_end_s[v]):.0f} s ago (< {b.min_hold_s:g} s)"
        hour = sum(1 for t in self.h.starts.get(m.vm, []) if t > now - HOUR_S)
        if hour >= b.max_moves_per_vm_per_hour:
            return "vm_moves_per_hour", f"{hour} moves in the last hour"
        backoff = _backoff(self.h.move_failures.get(m.vm), now, b.move_retry_max, b.move_backoff_s,
                           b.give_up_s, "move")
        if backoff is not None:
            return backoff
        d = self.index.get(m.dst)
        if d is not None and self.s.host_state[d] == PowerState.SUSPENDED.code:
            wake = self._wake_rule(m.dst)
            if wake is not None:
                return wake
        busiest = max(self.per_host.get(m.src, 0), self.per_host.get(m.dst, 0))
        if busiest >= b.max_migrations_per_host:
            return "host_concurrency", f"{busiest} migration(s) already on {m.src} or {m.dst}"
        if self.recent >= b.max_migrations_per_minute:
            return "migration_rate", f"{self.recent} migrations started in the last minute"
        return None

    def _wake_rule(self, host: str) -> tuple[str, str] | None:
        if host in self.book.maintenance:
            return "maintenance", f"{host} is in maintenance: never woken"
        b = self.book
        return _backoff(self.h.wake_failures.get(host), self.now, b.wake_retry_max, b.wake_backoff_s,
                        b.give_up_s, "wake")

    def suspend(self, a: Suspend) -> bool:
        if a.host in self.book.maintenance:
            self.refuse("maintenance", a, f"{a.host} is in maintenance: left as it is")
            return False
        h = self.index.get(a.host)
        if h in self.spare_awake:
            if len(self.spare_awake) <= self.book.reserve_hosts:
                self.refuse("reserve", a, f"keeps {self.book.reserve_hosts} empty host(s) awake")
                return False
            self.spare_awake.remove(h)
        return True

    def wake(self, a: Wake) -> bool:
        rule = self._wake_rule(a.host)
        if rule is not None:
            self.refuse(rule[0], a, rule[1])
            return False
        return True


def gate(plan: Plan, s: Snapshot, book: RuleBook, history: History,
         in_flight: Mapping[str, tuple[str, str]]) -> Gated:
    """The plan the rules allow, plus evacuation moves and reserve wakes; every refusal listed."""
    g = _Gate(s, book, history, in_flight)
    kept: list[Action] = []
    for action in plan.actions:
        if isinstance(action, Migrate):
            moved = g.migrate(action)
            if moved is not None:
                kept.append(moved)
        elif isinstance(action, Suspend):
            if g.suspend(action):
                kept.append(action)
        elif isinstance(action, Wake):
            if g.wake(action):
                kept.append(action)
        else:
            kept.append(action)
    kept += _evacuations(g, kept)
    kept += _reserve_wakes(g, kept)
    return Gated(Plan(tuple(kept), dict(plan.indicators)), tuple(g.refusals))


def _evacuations(g: _Gate, kept: list[Action]) -> list[Action]:
    """Moves of every movable VM off a maintenance host that is on, to the fullest host with room."""
    s = g.s
    out: list[Action] = []
    moving = {a.vm for a in kept if isinstance(a, Migrate)}
    load = s.host_vm_load_avg() + s.host_overhead_now
    mem = s.host_mem_used()
    for v, name in enumerate(s.vm_names):
        h = int(s.vm_host[v])
        if h < 0 or s.host_names[h] not in g.book.maintenance or s.vm_busy[v] or name in moving:
            continue
        if name in g.book.pinned or name in g.book.excluded or s.host_state[h] != PowerState.ON.code:
            continue
        room = ((s.host_state == PowerState.ON.code) & (mem + s.vm_mem_mib[v] <= s.host_mem_mib)
                & (load + s.vm_load_avg[v] <= EVACUATION_LOAD_SHARE * s.host_cores))
        room &= ~np.isin(np.array(s.host_names), list(g.book.maintenance))
        candidates = np.flatnonzero(room)
        if candidates.size == 0:
            continue
        dst = int(candidates[np.argmax(load[candidates])])
        move = g.migrate(Migrate(name, s.host_names[h], s.host_names[dst], s.method, "maintenance: evacuate"))
        if move is not None:
            out.append(move)
            load[dst] += s.vm_load_avg[v]
            mem[dst] += s.vm_mem_mib[v]
    return out


def _reserve_wakes(g: _Gate, kept: list[Action]) -> list[Action]:
    """Wake one sleeping host per plan while fewer than ``reserve_hosts`` empty hosts are awake."""
    if len(g.spare_awake) >= g.book.reserve_hosts:
        return []
    s = g.s
    waking = {a.host for a in kept if isinstance(a, Wake)}
    for h in np.flatnonzero(s.host_state == PowerState.SUSPENDED.code):
        name = s.host_names[int(h)]
        if name in g.book.maintenance or name in waking or g._wake_rule(name) is not None:
            continue
        return [Wake(name, f"reserve of {g.book.reserve_hosts} empty host(s)")]
    return []
