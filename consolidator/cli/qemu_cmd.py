"""CLI commands of the qemu area: ``consolidator guest build`` and ``consolidator calibrate``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consolidator.domain.errors import UserError

if TYPE_CHECKING:
    from consolidator.experiments.calibrate import CalibrationRow, GridSpec

log = logging.getLogger(__name__)

guest_app = typer.Typer(help="The test guest (Debian cloud kernel, busybox, workload generator).",
                        no_args_is_help=True)


@guest_app.command("build")
def guest_build(force: bool = typer.Option(False, help="Rebuild even when the cache is current.")) -> None:
    """Build the guest (or reuse the cached one) and print where it is."""
    from consolidator.agent.guest import GuestBuildError, build_guest

    try:
        image = build_guest(force=force)
    except GuestBuildError as exc:
        raise UserError(f"guest build: {exc}") from exc
    typer.echo(f"kernel  {image.kernel_path} ({image.kernel_version})")
    typer.echo(f"initrd  {image.initrd_path}")
    typer.echo(f"key     {image.key}")


def _require_machine() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        raise UserError("calibrate: qemu-system-x86_64 not found; run scripts/setup.d/20-qemu.sh")
    if os.geteuid() != 0:
        raise UserError("calibrate: needs root (network namespaces, tc, cgroups)")


def _row_line(row: object) -> str:
    r = dataclasses.asdict(row)  # type: ignore[call-overload]
    downtime = "-" if r["downtime_s"] is None else f"{r['downtime_s']:.3f}"
    mode = r["mode"] + ("+p" if r.get("preempt") else "")
    return (f"{mode:<11}{r['mem_mib']:>5}{r['dirty_mib_s']:>7.0f}{r['dirty_measured_mib_s']:>8.1f}"
            f"{r['real_s']:>8.2f}{r['model_s']:>8.2f}"
            f"{r['bytes_sent'] / 1e6:>8.0f}{r['model_bytes'] / 1e6:>8.0f}"
            f"{r['rounds']:>5}{downtime:>8}{_opt(r['postcopy_requests'] or None, '{:d}'):>7}"
            f"{_opt(r['postcopy_blocktime_s']):>7}{_opt(r.get('model_stall_s')):>7}"
            f"  {r['outcome']:<10}{r['bad_pages']:>4}")


def _opt(value: float | int | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


HEADER = (f"{'mode':<11}{'MiB':>5}{'dirty':>7}{'meas.':>8}{'real_s':>8}{'model_s':>8}{'MB':>8}"
          f"{'modelMB':>8}{'rnds':>5}{'down_s':>8}{'faults':>7}{'blk_s':>7}{'mstall':>7}"
          f"  {'outcome':<10}{'bad':>4}")


def calibrate(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per migration."),
    quick: bool = typer.Option(False, "--quick", help="256 MiB guest only (under 5 minutes)."),
    link_mb_s: float = typer.Option(120.0, help="Migration link rate in MB/s (10^6 bytes)."),
    timeout_s: float = typer.Option(0.0, help="Precopy timeout (0: 20 s, 15 s with --quick)."),
    out: Annotated[Path | None, typer.Option(help="Also write the JSON rows to this file.")] = None,
    rows_from: Annotated[Path | None, typer.Option(
        "--from", help="Summarise rows saved with --out instead of migrating.")] = None,
) -> None:
    """Run real migrations (precopy, postcopy, hybrid) over a shaped link; set them beside the model."""
    from consolidator.experiments.calibrate import GridSpec, run_grid

    if link_mb_s <= 0 or timeout_s < 0:
        raise UserError("calibrate: --link-mb-s must be > 0 and --timeout-s >= 0")
    spec = GridSpec.quick() if quick else GridSpec()
    spec = dataclasses.replace(spec, link_bytes_per_s=link_mb_s * 1e6,
                               timeout_s=timeout_s or spec.timeout_s)
    if not as_json:
        typer.echo(HEADER)
    if rows_from is not None:
        rows = _load_rows(rows_from)
        if rows:
            first = rows[0]
            spec = dataclasses.replace(spec, link_bytes_per_s=first.link_bytes_per_s,
                                       timeout_s=first.timeout_s)
        for row in rows if not as_json else []:
            typer.echo(_row_line(row))
    else:
        _require_machine()
        rows = run_grid(spec, report=lambda row: None if as_json else typer.echo(_row_line(row)))
    if out is not None:
        out.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
        return
    _print_summary(rows, spec)


def _load_rows(path: Path) -> list[CalibrationRow]:
    """Stored rows, with ``model_s`` recomputed by the current model (so model changes can be checked)."""
    from consolidator.experiments.calibrate import CalibrationRow
    from consolidator.experiments.calibration_fit import model_seconds, model_stall_s, row_params

    try:
        rows = [CalibrationRow(**obj) for obj in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"calibrate --from {path}: not a calibration JSON list ({exc})") from exc
    return [dataclasses.replace(
        r, model_s=round(model_seconds(r, row_params(r)), 3),
        model_stall_s=None if r.mode == "precopy" else round(model_stall_s(r, row_params(r)), 3))
        for r in rows]


def _print_summary(rows: list[CalibrationRow], spec: GridSpec) -> None:
    from consolidator.experiments.calibration_fit import summarise

    try:
        s = summarise(rows, spec)
    except ValueError as exc:
        raise UserError(f"calibrate: {exc}") from exc
    typer.echo(f"\nmigrations {s.rows}, bad pages {s.bad_pages}")
    typer.echo(f"model median relative error: {s.median_error:.1%} (completed only: "
               f"{s.median_error_completed:.1%}); by mode: "
               + ", ".join(f"{m} {e:.1%}" for m, e in s.median_error_by_mode.items()))
    fault = ", ".join(f"{k} {'n/a' if v is None else f'{v * 1000:.2f} ms'}" for k, v in s.fit.postcopy_fault_s.items())
    typer.echo(f"fit over {s.fit.points} completed: setup_s {s.fit.setup_s:.3f}, effective bandwidth "
               f"{s.fit.bandwidth_bytes_per_s / 1e6:.1f} MB/s")
    typer.echo(f"postcopy fault cost (vCPU block time per page request): {fault}")
    typer.echo("model guest stall vs measured block time, median |error| / move time: " + ", ".join(
        f"{k} {'n/a' if v is None else f'{v:.1%}'}" for k, v in s.stall_error_by_preempt.items()))
    typer.echo(f"model median relative error with the fitted parameters (in-sample): "
               f"{s.median_error_fitted:.1%}")
    typer.echo("the same model with the textbook linear dirty set, by mode: "
               + ", ".join(f"{m} {e:.1%}" for m, e in s.median_error_linear_by_mode.items()))
    if s.postcopy_worst_ratio is not None:
        typer.echo(f"postcopy: worst real time / (touched RAM / link rate) = {s.postcopy_worst_ratio:.2f}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(guest_app, name="guest")
    app.command("calibrate")(calibrate)
