"""A migration-aware consolidation policy (ours; issue 8): First-Fit-like packing that prices each move.

Description: every period, on an estimate of each host's load (the VMs placed there, each at a blend
of its latest and its averaged load, plus the measured virtualisation overhead per VM):
- *Relief* — a powered host whose estimate exceeds ``overload`` × its capacity, or that has been
  saturated for the whole averaging window, sheds one VM per period. It prefers a VM whose departure
  alone brings it down to ``fill`` and that fits on a powered host with room (no wake, no new host;
  the cheapest such move), then the busiest such VM to an empty host (an awake one before a sleeping
  one, which the controller wakes), and failing both its busiest VM.
- *Packing* — a powered host whose VMs are all idle (under ``idle_threshold``), not moved for
  ``hold_s``, and that all fit on the other powered hosts within ``fill`` × their capacity, is
  emptied one VM per period, best fit first; any host may receive, Warehouse or Server (the
  ``ideal`` First-Fit packs idle VMs beside active ones too; the paper's heuristic does not). A
  host is never woken to receive an idle VM.
- *Method per move* — precopy, postcopy or hybrid, whichever ``MoveCoster`` prices lowest from the
  guest's dirty rate, the link and the source's excess load: a move off an overloaded host takes the
  method that ends the overload soonest unless its stalls cost more; a precopy the model does not
  see converging is never chosen, so no move keeps a VM starving longer than postcopy would.
- *Link* — at most one planned move per host per period, and none onto or off a host with a move in
  flight (each move keeps the whole link; relief may still leave a host receiving one).
- Every powered host left without VMs is suspended.

Requirements: per-VM dirty rates and per-host link rates in the Snapshot; the cluster's migration
parameters and power profile as the policy's own model of the world (defaults: the paper's).

Limitations: CPU and memory only. Roles are ignored (the Warehouse is a host like the others); a
Warehouse node's admission ticket still serialises arrivals there (controller). Loads are taken as
they are now: a mode that will flip soon is not predicted (the Snapshot carries no history beyond the
averaging window), only guarded against by ``hold_s``. Per-host loops in Python: fine for the paper's
cluster and hundreds of hosts, not tuned for 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, MigrationMethod, PowerProfile, PowerState, VmSpec
from consolidator.models.migration import MigrationParams
from consolidator.models.power import STATE_CODES
from consolidator.policies.move_cost import MoveCost, MoveCoster

ON = STATE_CODES[PowerState.ON]
FAILED = STATE_CODES[PowerState.FAILED]
_MIB = 1024 * 1024
# Which empty host receives a VM first: one that is up, then one waking, then one asleep.
_WAKE_RANK = {STATE_CODES[s]: r for r, s in enumerate(
    (PowerState.ON, PowerState.RESUMING, PowerState.SUSPENDED, PowerState.SUSPENDING))}
_SATURATED = 0.97  # a host serving this share of its capacity is saturated


@dataclass(slots=True)
class _State:
    """Mutable scratch of one planning round: estimates updated as moves are planned."""

    est: np.ndarray  # host load estimate, cores
    count: np.ndarray  # VMs placed per host
    mem_free: np.ndarray
    load: np.ndarray  # per-VM load estimate, cores
    per_vm: float  # overhead per VM, cores
    used: np.ndarray  # host already in a move (in flight or planned in this round)
    emptying: np.ndarray  # host being emptied in this round: receives nothing
    moves: list[Migrate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AwarePolicy:
    fill: float = 0.9  # pack a host up to this share of its capacity
    overload: float = 1.0  # relieve a host whose estimate exceeds this share of its capacity
    idle_threshold: float = 0.5  # a VM under this load may be packed elsewhere
    hold_s: float = 10.0  # a VM is not packed again this soon after its last move ended
    react: float = 0.5  # weight of the latest sample against the window average in a VM's load
    delay_weight_ws: float = 100.0  # Ws per core·s of delayed work, when pricing a move
    max_precopy_s: float = 60.0  # a precopy predicted to take longer is not chosen
    name: str = "aware"
    params: MigrationParams = field(default_factory=MigrationParams)
    power: PowerProfile = field(default_factory=PowerProfile)

    def __post_init__(self) -> None:
        if not 0 < self.fill <= self.overload:
            raise ValueError("need 0 < fill <= overload")
        if self.idle_threshold <= 0 or self.hold_s < 0 or self.delay_weight_ws < 0 or self.max_precopy_s <= 0:
            raise ValueError("idle_threshold and max_precopy_s must be positive, hold_s and delay_weight_ws >= 0")
        if not 0 <= self.react <= 1:
            raise ValueError("react must be in [0, 1]")

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        return dict(requested)

    @property
    def coster(self) -> MoveCoster:
        return MoveCoster(self.params, self.power, self.delay_weight_ws, self.max_precopy_s)

    def plan(self, s: Snapshot) -> Plan:
        st = self._state(s)
        overloaded = self._overloaded(s, st)
        for h in overloaded:
            self._relieve(s, st, int(h))
        packed = self._pack(s, st)
        # a host a move is leaving or entering is not empty yet (st.used covers moves in flight and planned)
        empty = np.flatnonzero((s.host_state == ON) & (s.host_vm_count() == 0) & ~st.used)
        actions: list[Action] = [*st.moves]
        actions += [Suspend(s.host_names[h], "empty") for h in empty]
        return Plan(tuple(actions), {"overloaded_hosts": float(overloaded.size), "hosts_emptying": float(packed)})

    # -- estimates --------------------------------------------------------------------------------
    def _state(self, s: Snapshot) -> _State:
        counts = s.host_vm_count()
        on = s.host_state == ON
        running = max(1, int(counts[on].sum()))
        per_vm = float(s.host_overhead_now[on].sum()) / running
        load = self.react * s.vm_load_now + (1 - self.react) * s.vm_load_avg
        placed = s.vm_host >= 0
        est = np.bincount(s.vm_host[placed], weights=load[placed], minlength=len(s.host_names)) + per_vm * counts
        used = np.zeros(len(s.host_names), dtype=bool)
        moving = np.flatnonzero(s.vm_busy & placed)
        used[s.vm_host[moving]] = True
        src = s.vm_runs_on[moving]
        used[src[src >= 0]] = True
        return _State(est.astype(np.float64), counts.copy(), s.host_mem_mib - s.host_mem_used(), load, per_vm,
                      used, np.zeros(len(s.host_names), dtype=bool))

    def _overloaded(self, s: Snapshot, st: _State) -> np.ndarray:
        cap = s.host_cores
        saturated = (s.host_load_now >= _SATURATED * cap) & (s.host_load_avg >= _SATURATED * cap)
        over = (st.est > self.overload * cap) | saturated
        return np.flatnonzero((s.host_state == ON) & over & (st.count >= 2))

    def _movable_on(self, s: Snapshot, h: int) -> np.ndarray:
        return np.flatnonzero((s.vm_host == h) & (s.vm_runs_on == h) & ~s.vm_busy)

    # -- relief -----------------------------------------------------------------------------------
    def _relieve(self, s: Snapshot, st: _State, h: int) -> None:
        cap = float(s.host_cores[h])
        excess = max(0.0, float(st.est[h]) - cap)
        best: tuple[tuple[int, float], int, int, MoveCost] | None = None  # (key, VM, target, cost)
        for v in self._movable_on(s, h):
            fixes = st.est[h] - st.load[v] - st.per_vm <= self.fill * cap
            d, kind = self._relief_target(s, st, int(v), h)
            if d < 0:
                continue
            c = self.coster.cheapest(s.vm_mem_mib[v] * _MIB, float(st.load[v]), float(s.vm_dirty_bytes_per_s[v]),
                                     self._link(s, h, d), excess, source_sleeps=False)
            # fixing (down to ``fill``) beats not fixing; a host with room beats an empty one, and there the
            # cheaper move wins; an empty host goes to the busiest fixer (it deserves a host of its own);
            # when no single VM fixes it, the busiest one goes
            if fixes and kind == 0:
                key: tuple[int, float] = (0, c.cost_ws)
            else:
                key = (kind if fixes else 2, -float(st.load[v]))
            if best is None or key < best[0]:
                best = (key, int(v), d, c)
        if best is not None:
            _, v, d, c = best
            why = f"relieve host at {st.est[h]:.2f} of {cap:.2f} ({c.method.value})"
            self._add(s, st, v, h, d, c.method, why)

    def _relief_target(self, s: Snapshot, st: _State, v: int, h: int) -> tuple[int, int]:
        """(host, 0) with room and powered, else (host, 1) empty, else (-1, -1)."""
        room = self._with_room(s, st, v, h)
        if room >= 0:
            return room, 0
        ok = (np.arange(len(s.host_names)) != h) & (st.count == 0) & ~st.used & (s.host_state != FAILED)
        ok &= st.mem_free >= s.vm_mem_mib[v]
        free = np.flatnonzero(ok)
        if free.size == 0:
            return -1, -1
        ranks = np.array([_WAKE_RANK.get(int(s.host_state[f]), 9) for f in free])
        return int(free[np.lexsort((free, ranks))][0]), 1

    def _with_room(self, s: Snapshot, st: _State, v: int, h: int) -> int:
        """The powered host (not ``h``) where ``v`` fits best within ``fill``, or -1."""
        after = st.est + max(float(st.load[v]), float(s.vm_load_avg[v])) + st.per_vm
        ok = (s.host_state == ON) & (st.count > 0) & ~st.used & ~st.emptying
        ok &= after <= self.fill * s.host_cores
        ok &= st.mem_free >= s.vm_mem_mib[v]
        ok[h] = False
        fits = np.flatnonzero(ok)
        if fits.size == 0:
            return -1
        return int(fits[np.argmax(after[fits])])

    # -- packing ----------------------------------------------------------------------------------
    def _pack(self, s: Snapshot, st: _State) -> int:
        """Empty the hosts whose VMs are all idle and fit elsewhere; return how many are being emptied."""
        idle = np.maximum(st.load, s.vm_load_avg) < self.idle_threshold
        rested = s.t_s - s.vm_last_move_end_s >= self.hold_s
        candidates = np.flatnonzero((s.host_state == ON) & (st.count > 0) & ~st.used)
        order = candidates[np.lexsort((st.est[candidates], st.count[candidates]))]
        emptying = 0
        for h in order:
            vms = self._movable_on(s, int(h))
            if vms.size != st.count[h] or not np.all(idle[vms] & rested[vms]) or st.used[h]:
                continue
            first = self._first_move_if_all_fit(s, st, int(h), vms)
            if first is None:
                continue
            v, d = first
            c = self.coster.cheapest(s.vm_mem_mib[v] * _MIB, float(st.load[v]), float(s.vm_dirty_bytes_per_s[v]),
                                     self._link(s, int(h), d), 0.0, source_sleeps=True)
            st.emptying[h] = True
            emptying += 1
            self._add(s, st, v, int(h), d, c.method, f"pack idle VM, load {st.load[v]:.2f} ({c.method.value})")
        return emptying

    def _first_move_if_all_fit(self, s: Snapshot, st: _State, h: int, vms: np.ndarray) -> tuple[int, int] | None:
        """Place every VM of ``h`` by best fit on scratch copies; the first placement, or None if one fails."""
        est, mem, count = st.est.copy(), st.mem_free.copy(), st.count.copy()
        scratch = _State(est, count, mem, st.load, st.per_vm, st.used.copy(), st.emptying.copy())
        scratch.emptying[h] = True
        first: tuple[int, int] | None = None
        for v in vms[np.argsort(-st.load[vms], kind="stable")]:
            d = self._with_room(s, scratch, int(v), h)
            if d < 0:
                return None
            est[d] += max(float(st.load[v]), float(s.vm_load_avg[v])) + st.per_vm
            mem[d] -= s.vm_mem_mib[v]
            if first is None:
                first = (int(v), d)
        return first

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _link(s: Snapshot, src: int, dst: int) -> float:
        return float(min(s.host_nic_bytes_per_s[src], s.host_nic_bytes_per_s[dst]))

    def _add(self, s: Snapshot, st: _State, v: int, src: int, dst: int, method: MigrationMethod, why: str) -> None:
        if s.method is MigrationMethod.INSTANT:
            method = MigrationMethod.INSTANT
        load = float(st.load[v]) + st.per_vm
        st.est[src] -= load
        st.est[dst] += load
        st.count[src] -= 1
        st.count[dst] += 1
        st.mem_free[src] += s.vm_mem_mib[v]
        st.mem_free[dst] -= s.vm_mem_mib[v]
        st.used[src] = st.used[dst] = True
        st.moves.append(Migrate(s.vm_names[v], s.host_names[src], s.host_names[dst], method, why))
