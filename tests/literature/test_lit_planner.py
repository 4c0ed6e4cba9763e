"""The literature policies as planners of the control loop (policies/literature/planner.py).

The planner and the CloudSim-compatible engine run the same compiled decision code (``optimize``);
these tests check the planner's translation Snapshot -> arrays -> actions: by hand on small cases,
and against the engine's form of the same round on a random state (fast form vs loop form).
"""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.domain.actions import Migrate, Suspend
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.policies.literature.arrays import N_ACC, host_kinds, new_hosts, new_vms
from consolidator.policies.literature.optimize import optimize
from consolidator.policies.literature.power import HP_ML110_G4_WATTS, HP_ML110_G5_WATTS
from consolidator.policies.registry import make_policy

MIB = 1024 * 1024
ON = PowerState.ON.code


def _snapshot(vm_host: list[int], load: list[float], ram_mb: list[float], n_hosts: int, *,
              states: list[PowerState] | None = None, busy: list[bool] | None = None, cores: float = 2.0,
              speed: float = 1.0, history: np.ndarray | None = None, t_s: float = 300.0) -> Snapshot:
    n_v = len(vm_host)
    host = np.asarray(vm_host, dtype=np.int64)
    now = np.asarray(load, dtype=float)
    per_host = np.bincount(host[host >= 0], weights=now[host >= 0], minlength=n_hosts)
    tables = np.array([HP_ML110_G4_WATTS if h % 2 == 0 else HP_ML110_G5_WATTS for h in range(n_hosts)])
    hist = history if history is not None else np.zeros((n_v, 0))
    return Snapshot(
        t_s=t_s, method=MigrationMethod.POSTCOPY, host_names=tuple(f"h{i}" for i in range(n_hosts)),
        host_is_warehouse=np.zeros(n_hosts, bool),
        host_state=np.array([s.code for s in (states or [PowerState.ON] * n_hosts)], dtype=np.int8),
        host_cores=np.full(n_hosts, cores), host_mem_mib=np.full(n_hosts, 4096.0), host_load_avg=per_host,
        host_load_now=per_host, host_load_short=per_host, host_overhead_now=np.zeros(n_hosts),
        vm_names=tuple(f"v{i}" for i in range(n_v)), vm_host=host, vm_runs_on=host.copy(),
        vm_mem_mib=np.asarray(ram_mb) / (MIB / 1e6), vm_load_avg=now, vm_load_now=now, vm_load_short=now,
        vm_busy=np.asarray(busy or [False] * n_v), vm_move_src=np.full(n_v, -1, dtype=np.int64),
        vm_last_move_end_s=np.full(n_v, -np.inf),
        vm_dirty_bytes_per_s=np.zeros(n_v), host_nic_bytes_per_s=np.full(n_hosts, 125e6),
        vm_load_history=hist, vm_history_len=np.full(n_v, hist.shape[1], dtype=np.int64),
        host_core_speed=np.full(n_hosts, speed), vm_size=np.ones(n_v), host_power_table_watts=tables,
    )


def _moves(plan: object) -> dict[str, tuple[str, str]]:
    return {a.vm: (a.src, a.dst) for a in plan.actions if isinstance(a, Migrate)}  # type: ignore[attr-defined]


def test_thr_mmt_sheds_the_vm_with_least_ram_onto_the_cheapest_host() -> None:
    # h0 at 1.7 of 2.0 (85 % > 80 %): MMT takes v1 (least RAM), after which h0 is at 45 %.
    # PABFD: h1 (a G5 at 25 %) or an unused host; h2 is a G4 whose power rises least from idle.
    s = _snapshot([0, 0, 1], [0.9, 0.8, 0.5], [1740, 870, 1740], 4,
                  states=[PowerState.ON, PowerState.ON, PowerState.SUSPENDED, PowerState.SUSPENDED])
    plan = make_policy("thr-mmt-0.8").plan(s)
    assert _moves(plan) == {"v1": ("h0", "h2")}
    # h2 is asleep: the move wakes it (the controller's job); nothing is left empty and powered
    assert not [a for a in plan.actions if isinstance(a, Suspend)]


def test_underload_empties_the_least_used_host_and_suspends_it() -> None:
    s = _snapshot([0, 1], [0.3, 0.2], [870, 870], 3)
    plan = make_policy("thr-mmt-0.8").plan(s)
    assert _moves(plan) == {"v1": ("h1", "h0")}  # h1 (10 %) is emptied onto h0, h2 was empty already
    assert {a.host for a in plan.actions if isinstance(a, Suspend)} == {"h1", "h2"}


def test_vms_in_flight_and_failed_hosts_are_left_alone() -> None:
    s = _snapshot([0, 1], [0.3, 0.2], [870, 870], 3, busy=[False, True])
    assert _moves(make_policy("thr-mmt-0.8").plan(s)) == {}  # v1 is migrating: h1 cannot be emptied
    failed = _snapshot([0, 0, 1], [0.9, 0.8, 0.5], [1740, 870, 1740], 3,
                       states=[PowerState.ON, PowerState.ON, PowerState.FAILED])
    assert all(dst != "h2" for _, dst in _moves(make_policy("thr-mmt-0.8").plan(failed)).values())


def test_random_selection_is_a_pure_function_of_seed_and_time() -> None:
    rng = np.random.default_rng(3)
    s = _snapshot(list(rng.integers(0, 3, 40)), list(rng.uniform(0.0, 0.4, 40)), [870.0] * 40, 12, cores=4.0)
    a, b = make_policy("thr-rs-0.5", seed=7), make_policy("thr-rs-0.5", seed=8)
    assert a.plan(s) == a.plan(s)
    assert _moves(a.plan(s)) != _moves(b.plan(s))


def _random_state(seed: int, n_hosts: int = 16, n_vms: int = 48, k: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pe = np.where(np.arange(n_hosts) % 2 == 0, 1860.0, 2660.0)
    on = rng.random(n_hosts) < 0.75
    host = rng.choice(np.flatnonzero(on), n_vms)
    mips = rng.choice([2500.0, 2000.0, 1000.0, 500.0], n_vms)
    hist = rng.uniform(0.0, 0.9, (n_vms, k))
    return {"pe": pe, "host": host, "mips": mips, "ram": rng.uniform(500.0, 2000.0, n_vms), "hist": hist}


def _engine_round(st: dict[str, np.ndarray], kind: int, param: float, selector: int) -> dict[int, int]:
    """The engine's form: the arrays as cloudsim.run_policy builds them, one optimize call."""
    pe, host, mips = st["pe"], st["host"], st["mips"]
    table = np.array([HP_ML110_G4_WATTS if h % 2 == 0 else HP_ML110_G5_WATTS for h in range(len(pe))])
    n_v, k = st["hist"].shape
    hs = new_hosts(pe, table, n_v, k)
    vs = new_vms(mips, st["ram"], np.zeros((n_v, 1)))
    for v in range(n_v):
        hs.vms[host[v], hs.n[host[v]]] = v
        hs.n[host[v]] += 1
    vs.hist[:, :k] = st["hist"]
    vs.hlen[:] = k
    vs.demand[:] = st["hist"][:, 0] * mips
    for h in range(len(pe)):
        on_h = host == h
        hs.util[h] = min(hs.total[h], float(np.minimum(vs.demand[on_h], pe[h]).sum()))
        if on_h.any():  # the host's own history, oldest first, its newest value this round's
            series = (st["hist"][on_h] * mips[on_h, None]).sum(axis=0)[::-1] / hs.total[h]
            hs.uhist[h, :k] = np.minimum(1.0, series)
            hs.ulen[h] = k
            hs.utick[h] = 0
    out_vm, out_dst = np.empty(4 * n_v + 16, np.int64), np.empty(4 * n_v + 16, np.int64)
    kinds = host_kinds(pe, table)
    rand = np.random.default_rng([1, 300000]).random(n_v + 16)
    count = optimize(hs, vs, kind, param, selector, 62.5, 300.0, rand, np.zeros(N_ACC), out_vm, out_dst, kinds,
                     int(kinds.max()) + 1, np.zeros(len(pe), np.bool_), -1)
    final: dict[int, int] = {}
    for v, d in zip(out_vm[:count].tolist(), out_dst[:count].tolist(), strict=True):
        final[v] = d
    return {v: d for v, d in final.items() if d != host[v]}


@pytest.mark.parametrize("name", ["thr-mmt-0.8", "iqr-mmt-1.5", "mad-mc-2.5", "lr-mu-1.2", "mhod-mmt-0.1"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loop_form_decides_as_the_engine_form(name: str, seed: int) -> None:
    st = _random_state(seed)
    policy = make_policy(name)
    pe, host, mips = st["pe"], st["host"], st["mips"]
    n_hosts = len(pe)
    # Loads in MIPS, the engine's unit: PABFD's power increase is the same within a segment of a
    # SPECpower table, so its ties are decided by the last bits of the arithmetic, which another
    # unit would change.
    s = _snapshot(list(host), list(st["hist"][:, 0] * mips), list(st["ram"]), n_hosts,
                  history=st["hist"] * mips[:, None])
    load = np.bincount(host, weights=np.minimum(st["hist"][:, 0] * mips, pe[host]), minlength=n_hosts)
    on = np.bincount(host, minlength=n_hosts) > 0
    host_hist = np.stack([(st["hist"][host == h] * mips[host == h, None]).sum(axis=0) for h in range(n_hosts)])
    s = Snapshot(**{**s.__dict__, "host_cores": 2 * pe, "host_core_speed": pe,
                    "host_load_now": np.minimum(load, 2 * pe), "vm_size": mips,
                    "host_load_history": host_hist, "host_history_len": np.where(on, host_hist.shape[1], 0),
                    "host_state": np.full(n_hosts, ON, dtype=np.int8)})
    got = {int(a.vm[1:]): int(a.dst[1:]) for a in policy.plan(s).actions if isinstance(a, Migrate)}
    lit = policy  # LiteraturePlanner: its codes and parameter
    want = _engine_round(st, lit.detector, lit.parameter, lit.selector)  # type: ignore[attr-defined]
    assert got == want
    assert want, "the random state should make this policy move something"


def test_the_loop_plans_a_literature_policy_at_its_interval_with_history() -> None:
    from consolidator.experiments.runs import simulate, timeline
    from consolidator.sim.engine import Simulation
    from consolidator.sim.scenario import load_scenario

    sc = load_scenario("complex")
    sim = Simulation(sc, make_policy("iqr-mmt-1.5", interval_s=30), MigrationMethod.POSTCOPY, seed=1)
    result = sim.run()
    loop = sim.loop
    ticks = len(result.record.t_s)
    assert ticks >= sc.duration_s and loop.plans == ticks // 30  # at 30, 60, ... s: once per 30 s, not every period
    assert loop.monitor.history_length == 30
    _, _, vm_hist, vm_len = loop.monitor.history()
    assert vm_len.min() == min(30, loop.plans) and np.all(vm_hist[:, 0] >= 0)
    starts = [m["start_s"] for m in timeline(result)["migrations"]]
    assert starts  # (a move starts at a round, or later when its target must wake first)
    again = simulate(sc, "iqr-mmt-1.5", MigrationMethod.POSTCOPY, seed=1, policy_args={"interval_s": 30})
    assert again.summary["energy_ws"] == result.summary["energy_ws"]  # seeded: the same run
