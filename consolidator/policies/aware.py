"""A migration-aware consolidation policy (ours; issue 8): First-Fit-like packing that prices each move.

Description: every period, on two estimates of each host's load from the VMs placed there plus the
measured virtualisation overhead per VM — a *level* (each VM at its short-window average, a few
periods: a step shows at once, one noisy sample does not) and a *peak* (each at the larger of that
and its 10 s average: cautious):
- *Relief* — a powered host with two or more VMs whose level exceeds ``overload`` × its capacity, or
  that served its whole capacity over the short window (served load hides what starved guests want;
  over the 10 s window if a VM arrived within ``hold_s``: it is catching up), sheds one VM per
  period. It prefers a VM whose departure brings it down to ``fill`` and that fits on a powered host
  with room (no wake, no new host; the cheapest such move), then the busiest such VM to an empty host
  (an awake one before a waking one before a sleeping one, which the controller wakes), and failing
  both its busiest VM.
- *Packing* — a powered host whose VMs are all idle (level and latest sample under
  ``idle_threshold``), not moved for ``hold_s``, and that all fit on the other powered hosts within
  ``fill`` of their capacity (residents by peak), is emptied one VM per period, best fit first. Any
  host may receive, Warehouse or Server: the ``ideal`` First-Fit packs idle VMs beside active ones
  too, the paper's heuristic does not. A host is never woken to receive an idle VM. A VM moved within
  ``hold_s`` counts at its vCPU in room checks: its readings are those of a stalled or starved guest.
- *Method per move* — precopy, postcopy or hybrid, whichever ``MoveCoster`` prices lowest from the
  guest's dirty rate, the link and the source's excess load; a precopy the model does not see
  converging is never chosen, so no move keeps a VM starving at its source longer than postcopy would.
- *Link* — a host takes part in one move at a time (as source or destination), so each move has the
  whole link: parallel postcopies off one host share it and stall every guest for the whole transfer.
- *Wake ahead* — a saturated host still holding ``wake_ahead_vms`` VMs and waiting for its link keeps
  an empty host awake (or wakes one), so its next move starts when the link frees instead of a resume
  time later (the paper's start: every VM on the Warehouse node).
- Every other powered host without VMs is suspended.

Requirements: per-VM dirty rates, per-host link rates and each move's source in the Snapshot; the
cluster's migration parameters and power profile as the policy's own model of the world (defaults:
the paper's). VMs of one vCPU (a starved guest is assumed to want one core).

Limitations: CPU and memory only. Roles are ignored (a Warehouse node's admission ticket still
serialises arrivals there, in the controller). Loads are taken as they are now: a mode about to flip
is not predicted (the load history the Snapshot can carry is not used yet), only guarded against by
``hold_s``. Python loops over hosts: fine for the paper's cluster and hundreds of hosts, not tuned
for 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend, Wake
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, MigrationMethod, PowerProfile, PowerState, VmSpec
from consolidator.models.migration import MigrationParams
from consolidator.policies.move_cost import MoveCost, MoveCoster

ON = PowerState.ON.code
FAILED = PowerState.FAILED.code
RESUMING = PowerState.RESUMING.code
SUSPENDED = PowerState.SUSPENDED.code
_MIB = 1024 * 1024
# Which empty host receives a VM first: one that is up, then one waking, then one asleep.
_WAKE_RANK = np.full(len(PowerState), 9, dtype=np.int64)
for _rank, _state in enumerate((PowerState.ON, PowerState.RESUMING, PowerState.SUSPENDED, PowerState.SUSPENDING)):
    _WAKE_RANK[_state.code] = _rank
_SATURATED = 0.97  # a host serving this share of its capacity over the short window is saturated
_VCPU = 1.0  # what a starved guest wants (cores): its vCPU (the paper's VMs have one)


@dataclass(slots=True)
class _Round:
    """Scratch of one planning round: estimates updated as moves are planned."""

    level: np.ndarray  # per-VM load, reactive (cores)
    peak: np.ndarray  # per-VM load, cautious (cores)
    est: np.ndarray  # per-host level sum + overhead
    room_est: np.ndarray  # per-host peak sum + overhead
    saturated: np.ndarray  # per host
    count: np.ndarray  # VMs placed per host
    mem_free: np.ndarray
    per_vm: float  # overhead per VM (cores)
    used: np.ndarray  # host in a move (in flight or planned this round): its link is taken
    emptying: np.ndarray  # host being emptied this round: receives nothing
    moves: list[Migrate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AwarePolicy:
    fill: float = 0.8  # pack a host up to this share of its capacity (room for task noise and catch-up)
    overload: float = 1.0  # relieve a host whose level exceeds this share of its capacity
    idle_threshold: float = 0.5  # a VM whose level and latest load are under this may be packed elsewhere
    hold_s: float = 10.0  # a VM is not packed again this soon after its last move ended
    react: float = 1.0  # weight of the short-window average against the 10 s one in a VM's level
    delay_weight_ws: float = 100.0  # Ws per core·s of delayed work, when pricing a move
    max_precopy_s: float = 60.0  # a precopy predicted to take longer is not chosen
    wake_ahead: float = 1.0  # 1: keep or wake an empty host for an overloaded host waiting for its link
    wake_ahead_vms: float = 3.0  # ... that still holds this many VMs (a pile-up, not a guest catching up)
    name: str = "aware"
    params: MigrationParams = field(default_factory=MigrationParams)
    power: PowerProfile = field(default_factory=PowerProfile)

    def __post_init__(self) -> None:
        if not 0 < self.fill <= self.overload:
            raise ValueError("need 0 < fill <= overload")
        if self.idle_threshold <= 0 or self.hold_s < 0 or self.delay_weight_ws < 0 or self.max_precopy_s <= 0:
            raise ValueError("idle_threshold and max_precopy_s must be positive, hold_s and delay_weight_ws >= 0")
        if not (0 <= self.react <= 1 and self.wake_ahead in (0, 1)):
            raise ValueError("react must be in [0, 1], wake_ahead 0 or 1")

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        return dict(requested)

    @property
    def coster(self) -> MoveCoster:
        return MoveCoster(self.params, self.power, self.delay_weight_ws, self.max_precopy_s)

    def plan(self, s: Snapshot) -> Plan:
        r = self._round(s)
        overloaded = self._overloaded(s, r)
        waiting = [int(h) for h in overloaded[np.argsort(-r.est[overloaded], kind="stable")]
                   if not self._relieve(s, r, int(h))]
        packed = self._pack(s, r)
        keep, wake = self._spares(s, r, waiting) if self.wake_ahead else (set(), [])
        # a host a move leaves or enters is not empty yet (r.used covers moves in flight and planned)
        empty = np.flatnonzero((s.host_state == ON) & (s.host_vm_count() == 0) & ~r.used)
        actions: list[Action] = [*r.moves]
        actions += [Wake(s.host_names[h], "wake ahead: an overloaded host waits for its link") for h in wake]
        actions += [Suspend(s.host_names[h], "empty") for h in empty if int(h) not in keep]
        return Plan(tuple(actions), {"overloaded_hosts": float(overloaded.size), "hosts_emptying": float(packed),
                                     "waiting_for_link": float(len(waiting))})

    # -- estimates --------------------------------------------------------------------------------
    def _round(self, s: Snapshot) -> _Round:
        n = len(s.host_names)
        counts = s.host_vm_count()
        on = s.host_state == ON
        per_vm = float(s.host_overhead_now[on].sum()) / max(1, int(counts[on].sum()))
        level = self.react * s.vm_load_short + (1 - self.react) * s.vm_load_avg
        peak = np.maximum(level, s.vm_load_avg)
        # a guest that moved within hold_s was stalled or starved in its window: what it wants is unknown,
        # so room checks count it at its vCPU (a stalled postcopy reads as idle and drew VMs onto it)
        fresh = s.vm_busy | (s.t_s - s.vm_last_move_end_s < self.hold_s)
        peak[fresh] = np.maximum(peak[fresh], _VCPU)
        placed = s.vm_host >= 0

        def per_host(w: np.ndarray) -> np.ndarray:
            return np.bincount(s.vm_host[placed], weights=w[placed], minlength=n) + per_vm * counts

        used = np.zeros(n, dtype=bool)
        moving = s.vm_busy & placed
        used[s.vm_host[moving]] = True
        used[s.vm_move_src[moving & (s.vm_move_src >= 0)]] = True
        saturated = s.host_load_short >= _SATURATED * s.host_cores
        # a guest that just arrived catches up on the work its move delayed, which saturates its new host
        # for a while and passes. On a host that received one within hold_s the newcomer counts at its 10 s
        # average (its stall included), and the host is saturated only if its VMs at the lower of their
        # two averages fill it (a resident turning active still shows, a few periods later)
        arrived = placed & ~s.vm_busy & (s.t_s - s.vm_last_move_end_s < self.hold_s)
        at_new = np.zeros(n, dtype=bool)
        at_new[s.vm_host[arrived]] = True
        calm = per_host(np.minimum(level, s.vm_load_avg)) >= _SATURATED * s.host_cores
        saturated &= ~at_new | calm
        settled = np.where(arrived, np.minimum(level, s.vm_load_avg), level)
        return _Round(level, peak, per_host(settled), per_host(peak), saturated, counts.copy(),
                      s.host_mem_mib - s.host_mem_used(), per_vm, used, np.zeros(n, dtype=bool))

    def _overloaded(self, s: Snapshot, r: _Round) -> np.ndarray:
        over = (r.est > self.overload * s.host_cores) | r.saturated
        return np.flatnonzero((s.host_state == ON) & over & (r.count >= 2))

    def _movable_on(self, s: Snapshot, h: int) -> np.ndarray:
        return np.flatnonzero((s.vm_host == h) & (s.vm_runs_on == h) & ~s.vm_busy)

    # -- relief -----------------------------------------------------------------------------------
    def _relieve(self, s: Snapshot, r: _Round, h: int) -> bool:
        """Plan one move off overloaded ``h``; False if its link is taken or nothing can go."""
        if r.used[h]:
            return False
        cap = float(s.host_cores[h])
        vms = self._movable_on(s, h)
        # a starved guest wants its vCPU: on a saturated host the excess is what the VMs want beyond it
        want = np.full(vms.size, _VCPU) if r.saturated[h] else r.level[vms]
        excess = max(0.0, float(want.sum()) + r.per_vm * r.count[h] - cap)
        best: tuple[tuple[int, float], int, int] | None = None  # (key, VM, target)
        for i, v in enumerate(vms):
            d, kind = self._relief_target(s, r, int(v), h)
            if d < 0:
                continue
            fixes = r.est[h] - r.level[v] - r.per_vm <= self.fill * cap
            if fixes and kind == 0:  # a host with room: the cheapest move
                c = self._cheapest(s, r, int(v), h, d, float(want[i]), excess, source_sleeps=False)
                key: tuple[int, float] = (0, c.cost_ws)
            else:  # an empty host goes to the busiest fixer; if none fixes alone, the busiest VM goes
                key = (kind if fixes else 2, -float(r.level[v]))
            if best is None or key < best[0]:
                best = (key, int(v), d)
        if best is None:
            return False
        _, v, d = best
        i = int(np.flatnonzero(vms == v)[0])
        c = self._cheapest(s, r, v, h, d, float(want[i]), excess, source_sleeps=False)
        self._add(s, r, v, h, d, c.method, f"relieve host at {s.host_load_now[h]:.2f} of {cap:.2f} ({c.method.value})")
        return True

    def _relief_target(self, s: Snapshot, r: _Round, v: int, h: int) -> tuple[int, int]:
        """(host, 0): powered, with room; else (host, 1): empty; else (-1, -1)."""
        room = self._with_room(s, r, v, h)
        if room >= 0:
            return room, 0
        ok = (r.count == 0) & ~r.used & (s.host_state != FAILED) & (r.mem_free >= s.vm_mem_mib[v])
        ok[h] = False
        free = np.flatnonzero(ok)
        if free.size == 0:
            return -1, -1
        return int(free[np.lexsort((free, _WAKE_RANK[s.host_state[free]]))][0]), 1

    def _with_room(self, s: Snapshot, r: _Round, v: int, h: int) -> int:
        """The powered host (not ``h``) where ``v`` fits best within ``fill`` by peak loads, or -1."""
        after = r.room_est + r.level[v] + r.per_vm
        ok = (s.host_state == ON) & (r.count > 0) & ~r.used & ~r.emptying & ~r.saturated
        ok &= (after <= self.fill * s.host_cores) & (r.mem_free >= s.vm_mem_mib[v])
        ok[h] = False
        fits = np.flatnonzero(ok)
        return int(fits[np.argmax(after[fits])]) if fits.size else -1

    # -- packing ----------------------------------------------------------------------------------
    def _pack(self, s: Snapshot, r: _Round) -> int:
        """Empty the hosts whose VMs are all idle and fit elsewhere; return how many are being emptied."""
        idle = np.maximum(r.level, s.vm_load_now) < self.idle_threshold
        rested = s.t_s - s.vm_last_move_end_s >= self.hold_s
        candidates = np.flatnonzero((s.host_state == ON) & (r.count > 0) & ~r.used)
        emptying = 0
        for h in candidates[np.lexsort((r.room_est[candidates], r.count[candidates]))]:
            vms = self._movable_on(s, int(h))
            if r.used[h] or vms.size != r.count[h] or not np.all(idle[vms] & rested[vms]):
                continue
            first = self._first_move_if_all_fit(s, r, int(h), vms)
            if first is None:
                continue
            v, d = first
            c = self._cheapest(s, r, v, int(h), d, float(r.level[v]), 0.0, source_sleeps=True)
            r.emptying[h] = True
            emptying += 1
            self._add(s, r, v, int(h), d, c.method, f"pack idle VM at {r.level[v]:.2f} ({c.method.value})")
        return emptying

    def _first_move_if_all_fit(self, s: Snapshot, r: _Round, h: int, vms: np.ndarray) -> tuple[int, int] | None:
        """Best-fit every VM of ``h`` on a scratch copy; the first placement, or None if one fails."""
        trial = _Round(r.level, r.peak, r.est, r.room_est.copy(), r.saturated, r.count, r.mem_free.copy(),
                       r.per_vm, r.used, r.emptying.copy())
        trial.emptying[h] = True
        first: tuple[int, int] | None = None
        for v in vms[np.argsort(-r.level[vms], kind="stable")]:
            d = self._with_room(s, trial, int(v), h)
            if d < 0:
                return None
            trial.room_est[d] += r.level[v] + r.per_vm
            trial.mem_free[d] -= s.vm_mem_mib[v]
            first = first or (int(v), d)
        return first

    # -- wake ahead -------------------------------------------------------------------------------
    def _spares(self, s: Snapshot, r: _Round, waiting: list[int]) -> tuple[set[int], list[int]]:
        """Empty hosts to keep powered and hosts to wake, one per overloaded host waiting for its link."""
        need = sum(1 for h in waiting if r.used[h] and r.saturated[h] and r.count[h] >= self.wake_ahead_vms)
        if need == 0:
            return set(), []
        free = np.flatnonzero((r.count == 0) & ~r.used & (s.host_state != FAILED))
        free = free[np.lexsort((free, _WAKE_RANK[s.host_state[free]]))][:need]
        keep = {int(h) for h in free if s.host_state[h] in (ON, RESUMING)}
        return keep, [int(h) for h in free if s.host_state[h] == SUSPENDED]

    # -- helpers ----------------------------------------------------------------------------------
    def _cheapest(self, s: Snapshot, r: _Round, v: int, src: int, dst: int, want: float, excess: float,
                  source_sleeps: bool) -> MoveCost:
        link = float(min(s.host_nic_bytes_per_s[src], s.host_nic_bytes_per_s[dst]))
        dirty = float(s.vm_dirty_bytes_per_s[v])
        # served at the source, wanted at the destination: the guest dirties in proportion to the CPU it runs
        at_dst = dirty * want / r.level[v] if r.level[v] > 0.01 else dirty
        return self.coster.cheapest(s.vm_mem_mib[v] * _MIB, want, dirty, link, excess, source_sleeps, at_dst)

    def _add(self, s: Snapshot, r: _Round, v: int, src: int, dst: int, method: MigrationMethod, why: str) -> None:
        if s.method is MigrationMethod.INSTANT:
            method = MigrationMethod.INSTANT
        r.est[src] -= r.level[v] + r.per_vm
        r.est[dst] += r.level[v] + r.per_vm
        r.room_est[src] -= r.peak[v] + r.per_vm
        r.room_est[dst] += r.level[v] + r.per_vm
        r.count[src] -= 1
        r.count[dst] += 1
        r.mem_free[src] += s.vm_mem_mib[v]
        r.mem_free[dst] -= s.vm_mem_mib[v]
        r.used[src] = r.used[dst] = True
        r.moves.append(Migrate(s.vm_names[v], s.host_names[src], s.host_names[dst], method, why))
