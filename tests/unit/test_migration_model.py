"""The migration models: precopy rounds and non-convergence, postcopy ≈ RAM / bandwidth, hybrid."""

from __future__ import annotations

import math

import pytest

from consolidator.domain.types import MigrationMethod as M
from consolidator.domain.types import MigrationOutcome
from consolidator.models.migration import DirtyModel, MigrationParams, MigrationProcess, OnTimeoutPolicy, estimate

GIB = 1024**3
BW = 120e6
# The textbook model: the whole link rate, no set-up, every write dirties a new page.
TEXTBOOK = MigrationParams(link_efficiency=1.0, setup_s=0.0, dirty_model=DirtyModel.LINEAR)
DEFAULT = MigrationParams()
EFF_BW = BW * DEFAULT.link_efficiency


def test_idle_precopy_is_one_pass_of_ram() -> None:
    e = estimate(M.PRECOPY, GIB, GIB, 0.0, DEFAULT)
    assert e.converged and e.rounds == 1
    assert e.duration_s == pytest.approx(DEFAULT.setup_s + GIB / EFF_BW, rel=1e-6)
    assert e.bytes_sent == pytest.approx(GIB)


@pytest.mark.parametrize("dirty", [20e6, 40e6, 80e6])
def test_precopy_rounds_follow_the_geometric_series(dirty: float) -> None:
    """Round i lasts (D/B)^i · RAM/B; stop when the dirty set fits in B × downtime_limit."""
    p = TEXTBOOK
    ratio = dirty / BW
    rounds, size, total = 1, GIB / BW, GIB / BW
    while size * dirty > BW * p.downtime_limit_s:
        rounds += 1
        size *= ratio
        total += size
    total += size * dirty / BW  # the stop-and-copy of the last dirty set
    e = estimate(M.PRECOPY, GIB, GIB, dirty, p)
    assert e.converged
    assert e.rounds == rounds
    assert e.duration_s == pytest.approx(total, rel=1e-3)
    assert e.downtime_s <= p.downtime_limit_s + 1e-9


@pytest.mark.parametrize("params", [TEXTBOOK, DEFAULT], ids=["linear", "uniform"])
def test_precopy_does_not_converge_when_guest_dirties_faster_than_the_link(params: MigrationParams) -> None:
    p = MigrationParams(timeout_s=30.0, setup_s=0.0, dirty_model=params.dirty_model,
                        link_efficiency=params.link_efficiency)
    e = estimate(M.PRECOPY, GIB, GIB, 200e6, p)
    assert not e.converged
    assert e.duration_s == pytest.approx(30.0)
    assert e.bytes_sent == pytest.approx(30.0 * BW * p.link_efficiency, rel=1e-6)


def test_uniform_writes_dirty_fewer_pages_than_linear() -> None:
    """Random writes re-dirty pages: the set after r·t bytes of writes is w·(1 − e^(−r·t/w))."""
    proc = MigrationProcess(M.PRECOPY, GIB, GIB, MigrationParams(setup_s=0.0, timeout_s=1e6))
    proc.advance(1.0, BW, 0.0)  # start the first pass
    before = proc.dirty
    proc.advance(2.0, BW, 256e6)
    assert proc.dirty - before == pytest.approx(GIB * (1 - math.exp(-512e6 / GIB)), rel=1e-6)
    uniform = estimate(M.PRECOPY, GIB, GIB, 80e6, DEFAULT)
    linear = estimate(M.PRECOPY, GIB, GIB, 80e6, MigrationParams(dirty_model=DirtyModel.LINEAR))
    assert uniform.converged and linear.converged and uniform.duration_s < linear.duration_s


def test_precopy_timeout_can_switch_to_postcopy_which_then_completes() -> None:
    p = MigrationParams(timeout_s=30.0, on_timeout=OnTimeoutPolicy.POSTCOPY)
    e = estimate(M.PRECOPY, GIB, GIB, 200e6, p)
    assert e.converged and e.switched_to_postcopy
    assert e.duration_s <= 30.0 + GIB / BW + 1e-6


def test_working_set_bounds_the_dirty_set() -> None:
    """A small writable working set converges even at a high write rate."""
    p = MigrationParams()
    wws = int(0.02 * GIB)  # 21 MB < B × 0.3 s = 36 MB
    e = estimate(M.PRECOPY, GIB, wws, 500e6, p)
    assert e.converged and e.rounds == 1


@pytest.mark.parametrize("dirty", [0.0, 40e6, 80e6, 200e6, 1e9])
def test_postcopy_time_is_ram_over_bandwidth_whatever_the_guest_does(dirty: float) -> None:
    e = estimate(M.POSTCOPY, GIB, GIB, dirty, DEFAULT)
    assert e.converged and not e.switched_to_postcopy
    assert e.duration_s == pytest.approx(DEFAULT.setup_s + GIB / EFF_BW, rel=1e-6)
    assert e.bytes_sent == pytest.approx(GIB)
    assert e.downtime_s < 0.1


def test_postcopy_stalls_a_writing_guest_more_than_an_idle_one() -> None:
    idle = estimate(M.POSTCOPY, GIB, GIB, 0.0, MigrationParams())
    busy = estimate(M.POSTCOPY, GIB, GIB, 80e6, MigrationParams())
    assert idle.guest_stall_s == 0.0
    assert 0.0 < busy.guest_stall_s <= busy.duration_s


def test_hybrid_switches_after_its_precopy_rounds_and_completes() -> None:
    e = estimate(M.HYBRID, GIB, GIB, 200e6, TEXTBOOK)
    assert e.converged and e.switched_to_postcopy and e.rounds == 1
    # one pass of RAM plus the dirty set (bounded by RAM) once more
    assert GIB / BW < e.duration_s <= 2 * GIB / BW + 1e-6


def test_touched_memory_is_what_postcopy_sends() -> None:
    e = estimate(M.POSTCOPY, GIB, GIB, 0.0, TEXTBOOK, touched_bytes=GIB / 4)
    assert e.duration_s == pytest.approx(GIB / 4 / BW)


def test_process_reports_where_the_guest_runs() -> None:
    proc = MigrationProcess(M.POSTCOPY, GIB, GIB, MigrationParams(setup_s=0.5, link_efficiency=1.0))
    proc.advance(0.25, BW, 0.0)
    assert not proc.runs_at_destination
    proc.advance(1.0, BW, 0.0)
    assert proc.runs_at_destination and not proc.done
    proc.advance(100.0, BW, 0.0)
    assert proc.done and proc.outcome is MigrationOutcome.COMPLETED
    assert math.isclose(proc.elapsed_s, 0.5 + GIB / BW, rel_tol=1e-6)


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        MigrationParams(bandwidth_bytes_per_s=0)
    with pytest.raises(ValueError):
        MigrationProcess(M.INSTANT, GIB, GIB, MigrationParams())
