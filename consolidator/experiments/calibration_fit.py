"""What a calibration grid says about the migration model: errors, and the parameters it suggests.

- effective bandwidth and set-up time: least squares of ``real_s = setup_s + bytes_sent / bandwidth``
  over the migrations that completed (every byte crossed the shaped link once per send);
- postcopy fault cost, with ``postcopy-preempt`` off and on: the destination's vCPU block time (QEMU
  ``postcopy-blocktime``) per page request, and the model's guest stall beside that block time;
- the model's median relative error, with its defaults and again with the fitted parameters
  (in-sample: the same rows were used to fit, so the second figure is optimistic).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from consolidator.domain.types import MIB, MigrationMethod
from consolidator.experiments.calibrate import CalibrationRow, GridSpec, fault_cost_s, model_params
from consolidator.models.migration import DirtyModel, MigrationParams, estimate


@dataclass(frozen=True, slots=True)
class Fit:
    setup_s: float
    bandwidth_bytes_per_s: float
    postcopy_fault_s: dict[str, float | None]  # "vanilla", "preempt": block time per page request
    points: int


@dataclass(frozen=True, slots=True)
class CalibrationSummary:
    rows: int
    bad_pages: int
    median_error: float  # |model - real| / real over every row
    median_error_completed: float  # ... over the rows that completed (cancelled ones equal the timeout)
    median_error_by_mode: dict[str, float]
    fit: Fit
    median_error_fitted: float  # with the fitted parameters (in-sample)
    median_error_linear_by_mode: dict[str, float]  # the same model with the textbook linear dirty set
    postcopy_worst_ratio: float | None  # max real_s / (touched RAM / link rate) over postcopy rows
    # "vanilla", "preempt": median |model stall - measured vCPU block time| / real time of the move,
    # over postcopy and hybrid rows that wrote memory; None without such rows
    stall_error_by_preempt: dict[str, float | None]


def preempt_name(preempt: bool) -> str:
    return "preempt" if preempt else "vanilla"


def relative_error(real_s: float, model_s: float) -> float:
    return abs(model_s - real_s) / real_s if real_s > 0 else 0.0


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def fit_link(rows: Sequence[CalibrationRow]) -> tuple[float, float, int]:
    """(setup_s, bandwidth_bytes_per_s, points) from the completed migrations."""
    done = [r for r in rows if r.converged and r.bytes_sent > 0]
    if len(done) < 2:
        raise ValueError("need at least two completed migrations to fit the link")
    slope, intercept = np.polyfit([r.bytes_sent for r in done], [r.real_s for r in done], 1)
    return float(intercept), float(1.0 / slope), len(done)


def fit_fault_cost(rows: Sequence[CalibrationRow], preempt: bool | None = None) -> float | None:
    """Median vCPU block time per page request over rows that wrote memory (of one preempt setting)."""
    costs = [r.postcopy_blocktime_s / r.postcopy_requests for r in rows
             if r.postcopy_blocktime_s is not None and r.postcopy_requests > 0 and r.dirty_mib_s > 0
             and (preempt is None or r.preempt == preempt)]
    return _median(costs) if costs else None


def row_params(row: CalibrationRow) -> MigrationParams:
    """The model's defaults with the link rate, timeout and fault cost (preempt or not) of the row."""
    return replace(MigrationParams(), bandwidth_bytes_per_s=row.link_bytes_per_s, timeout_s=row.timeout_s,
                   hybrid_rounds=1, postcopy_fault_s=fault_cost_s(row.preempt))


def model_stall_s(row: CalibrationRow, params: MigrationParams) -> float:
    est = estimate(MigrationMethod(row.mode), row.mem_mib * MIB, row.wws_bytes,
                   row.dirty_measured_mib_s * MIB, params, row.touched_bytes)
    return est.guest_stall_s


def stall_error(rows: Sequence[CalibrationRow], preempt: bool) -> float | None:
    """Median |model stall - measured block time| / real time, postcopy and hybrid rows that wrote."""
    errs = [abs(model_stall_s(r, row_params(r)) - r.postcopy_blocktime_s) / r.real_s for r in rows
            if r.preempt == preempt and r.mode != MigrationMethod.PRECOPY.value and r.dirty_mib_s > 0
            and r.postcopy_blocktime_s is not None and r.converged and r.real_s > 0]
    return _median(errs) if errs else None


def model_seconds(row: CalibrationRow, params: MigrationParams) -> float:
    est = estimate(MigrationMethod(row.mode), row.mem_mib * MIB, row.wws_bytes,
                   row.dirty_measured_mib_s * MIB, params, row.touched_bytes)
    return est.duration_s


def summarise(rows: Sequence[CalibrationRow], spec: GridSpec) -> CalibrationSummary:
    setup_s, bandwidth, points = fit_link(rows)
    fit = Fit(setup_s, bandwidth, {preempt_name(p): fit_fault_cost(rows, p) for p in (False, True)}, points)
    # the fitted bandwidth is already what crossed the link: no further efficiency factor
    fitted = replace(model_params(spec), setup_s=max(0.0, setup_s), bandwidth_bytes_per_s=bandwidth,
                     link_efficiency=1.0)
    by_mode = {m.value: _median([relative_error(r.real_s, r.model_s) for r in rows if r.mode == m.value])
               for m in spec.modes}
    linear = replace(model_params(spec), dirty_model=DirtyModel.LINEAR)
    postcopy = [r.real_s / (r.touched_bytes / spec.link_bytes_per_s) for r in rows
                if r.mode == MigrationMethod.POSTCOPY.value and r.touched_bytes > 0]
    return CalibrationSummary(
        rows=len(rows),
        bad_pages=sum(r.bad_pages for r in rows),
        median_error=_median([relative_error(r.real_s, r.model_s) for r in rows]),
        median_error_completed=_median([relative_error(r.real_s, r.model_s) for r in rows if r.converged]),
        median_error_by_mode=by_mode,
        fit=fit,
        median_error_fitted=_median([relative_error(r.real_s, model_seconds(r, fitted)) for r in rows]),
        median_error_linear_by_mode={
            m.value: _median([relative_error(r.real_s, model_seconds(r, linear)) for r in rows if r.mode == m.value])
            for m in spec.modes},
        postcopy_worst_ratio=max(postcopy) if postcopy else None,
        stall_error_by_preempt={preempt_name(p): stall_error(rows, p) for p in (False, True)},
    )
