"""CLI commands of the agent area: ``consolidator agent`` (one host) and ``consolidator lab``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from consolidator.domain.errors import UserError

lab_app = typer.Typer(help="A live cluster on this machine: one agent per host in a network namespace "
                           "(needs root and QEMU; see docs/agent.md).", no_args_is_help=True)

DirOpt = Annotated[Path, typer.Option("--dir", help="the lab's folder (agents' state, logs, lab.json)")]
DEFAULT_DIR = Path("/var/tmp/consolidator-lab")


def _methods(text: str) -> list:  # type: ignore[type-arg]
    from consolidator.domain.types import MigrationMethod

    try:
        found = [MigrationMethod(m.strip()) for m in text.split(",") if m.strip()]
    except ValueError as exc:
        raise UserError(f"{exc}; use precopy, postcopy or hybrid", field="--methods") from None
    if not found or MigrationMethod.INSTANT in found:
        raise UserError("give one or more of precopy, postcopy, hybrid", field="--methods")
    return found


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("agent")
    def agent(
        config: Annotated[Path, typer.Option("--config", help="the host's host.toml")],
        check: Annotated[bool, typer.Option("--check", help="validate host.toml and its token file, print "
                                            "the resolved configuration as JSON (token hidden), exit")] = False,
    ) -> None:
        """Run a host agent: the HTTP API over this host's QEMU VMs (see docs/agent.md)."""
        if check:
            from consolidator.agent.api.config import load_config

            resolved = load_config(config).model_dump(mode="json")
            if resolved["token"] is not None:
                resolved["token"] = "(set)"
            typer.echo(json.dumps(resolved, indent=2))
            return
        from consolidator.agent.serve import serve

        serve(config)

    @lab_app.command("up")
    def up(
        folder: DirOpt = DEFAULT_DIR,
        scenario: Annotated[str, typer.Option(help="scenario whose hosts the lab gets")] = "simple",
        link_mb_s: Annotated[float, typer.Option(help="migration link per host, MB/s")] = 120.0,
        time_scale: Annotated[float, typer.Option(help="scales S3 suspend/resume times")] = 0.25,
    ) -> None:
        """Make the namespaces, veths, shaped links and one agent per host."""
        from consolidator.experiments.lab import LabScale, lab_up_for, scale_scenario
        from consolidator.experiments.lab.network import LabNetworkError
        from consolidator.sim.scenario import load_scenario

        _positive(link_mb_s, "--link-mb-s")
        sc = scale_scenario(load_scenario(scenario), LabScale(time_scale=time_scale))
        try:
            state = lab_up_for(folder, sc, link_mb_s * 1e6)
        except (LabNetworkError, RuntimeError) as exc:
            typer.echo(f"error: lab up failed: {exc} (undo with 'consolidator lab down')", err=True)
            raise typer.Exit(1) from None
        endpoints = state.endpoints()
        for host in state.hosts:
            typer.echo(f"{host}  agent {endpoints[host].base_url} (pid {state.pids[host]})  "
                       f"QEMU in netns {state.netns[host]} at {state.addresses[host]}")
        typer.echo(f"manage it: consolidator manager --config {state.cluster_file}")

    @lab_app.command("run")
    def run(
        out: Annotated[Path, typer.Option("--out", help="folder for the run folders and comparison")],
        folder: DirOpt = DEFAULT_DIR,
        scenario: Annotated[str, typer.Option(help="built-in name or TOML file (fixed schedules)")] = "simple",
        methods: Annotated[str, typer.Option(help="comma-separated")] = "postcopy,precopy",
        time_scale: Annotated[float, typer.Option(help="times and VM memory (x 1 GiB) scale")] = 0.25,
        cpu_quota: Annotated[float, typer.Option(help="cores per VM: its 100 %")] = 0.5,
        link_mb_s: Annotated[float, typer.Option(help="migration link per host, MB/s")] = 120.0,
        overhead: Annotated[str, typer.Option(help="host load: 'model' (VM loads + the scenario's "
                                                  "overhead) or 'measured' (QEMU's CPU, TCG included)")] = "model",
        keep: Annotated[bool, typer.Option(help="leave a lab this command brought up running")] = False,
        cap: Annotated[list[str] | None, typer.Option(
            help="HOST=CAPACITY: cap a host at CAPACITY VM loads, in the simulator and live (its VMs "
                 "together get CAPACITY x cpu_quota cores); repeat for several")] = None,
        policy: Annotated[str | None, typer.Option(help="any name of 'consolidator policies' (default: the "
                                                        "scenario's [policy], else paper); its time arguments "
                                                        "are scaled with the scenario")] = None,
        faults: Annotated[str | None, typer.Option(help="instead: a fault-injection run, SPEC = 'quick', 'all' "
                                                         "or a TOML file (docs/faults.md)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="--faults: print the summary as JSON")] = False,
        engine: Annotated[str, typer.Option(help="'agent' (the lab's agents) or 'libvirt' (a private libvirtd "
                                                 "per host, made for this run; docs/libvirt.md)")] = "agent",
    ) -> None:
        """Run the scaled scenario live and simulated (paper policy or --policy); print the timeline comparison."""
        if faults is not None:
            _fault_run(faults, out, as_json)
            return
        if engine not in ("agent", "libvirt"):
            raise UserError(f"--engine {engine!r}: expected 'agent' or 'libvirt'", field="engine")
        from consolidator.experiments.lab import LabScale, lab_run, libvirt_lab_run
        from consolidator.experiments.lab.network import LabNetworkError
        from consolidator.manager.client import AgentError

        _positive(link_mb_s, "--link-mb-s")
        found = _methods(methods)
        scale = LabScale(time_scale, cpu_quota, overhead, _caps(cap or []))
        try:
            if engine == "libvirt":
                comparisons = libvirt_lab_run(out, scenario, found, scale, link_mb_s * 1e6, policy)
            else:
                comparisons = lab_run(folder, out, scenario, found, scale, link_mb_s * 1e6, keep, policy=policy)
        except (AgentError, LabNetworkError, RuntimeError) as exc:  # the lab failed, not the input
            typer.echo(f"error: lab run failed: {exc}", err=True)
            raise typer.Exit(1) from None
        for c in comparisons:
            typer.echo(json.dumps({k: c[k] for k in ("method", "against", "max_rel_diff", "unmatched", "energy_ws")}))
        typer.echo(f"wrote {out}/comparison.md")

    @lab_app.command("down")
    def down(folder: DirOpt = DEFAULT_DIR) -> None:
        """Stop the agents and their QEMU processes; remove namespaces, veths, qdiscs, cgroups."""
        from consolidator.experiments.lab import lab_down

        removed = lab_down(folder)
        typer.echo("\n".join(removed) if removed else "nothing to remove")

    app.add_typer(lab_app, name="lab")


def _caps(words: list[str]) -> tuple[tuple[str, float], ...]:
    caps = []
    for word in words:
        host, _, value = word.partition("=")
        try:
            caps.append((host.strip().lower(), float(value)))
        except ValueError:
            raise UserError(f"--cap {word!r}: expected HOST=CAPACITY, e.g. pm1=0.6") from None
    return tuple(caps)


def _fault_run(spec_name: str, out: Path, as_json: bool) -> None:
    """``lab run --faults``: the summary to stdout and OUT/faults.json; exit 1 if anything was lost,
    unreconciled or damaged that the faults did not force."""
    import asyncio

    from consolidator.agent.qemu.launch import why_qemu_cannot_run
    from consolidator.experiments.lab.faults import run_faults
    from consolidator.experiments.lab.faultspec import load_spec
    from consolidator.experiments.lab.network import LabNetworkError
    from consolidator.manager.client import AgentError

    spec = load_spec(spec_name)
    reason = why_qemu_cannot_run()
    if reason:
        typer.echo(f"error: lab run --faults: {reason}", err=True)
        raise typer.Exit(1)
    try:
        summary = asyncio.run(run_faults(spec, out))
    except (AgentError, LabNetworkError, RuntimeError) as exc:
        typer.echo(f"error: fault run failed: {exc}", err=True)
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    data = summary.as_json()
    (out / "faults.json").write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(data))
    else:
        typer.echo(f"{summary.migrations} moves, faults {dict(summary.faults)}, lost {summary.vms_lost} "
                   f"(unexplained {summary.unexplained_losses}), unreconciled {summary.migrations_unreconciled}, "
                   f"postcopy recoveries {summary.postcopy_recoveries}, bad pages {summary.bad_pages}; "
                   f"wrote {out}/faults.json")
    if not summary.ok:
        raise typer.Exit(1)


def _positive(value: float, name: str) -> None:
    if not value > 0:
        raise UserError("must be positive", field=name)
