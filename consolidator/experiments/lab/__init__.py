"""The live lab: a small cluster of host agents in network namespaces on this machine.

``lab up`` makes it, ``lab run`` runs a scaled scenario live (the simple one and the paper policy by
default; any registered policy, postcopy and precopy) beside the simulator's prediction, ``lab down``
removes everything it made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.experiments.lab.backlog import backlog_markdown, compare_backlog
from consolidator.experiments.lab.cluster_file import write_cluster_config
from consolidator.experiments.lab.compare import compare, to_markdown
from consolidator.experiments.lab.experiment import run_live
from consolidator.experiments.lab.lab import AGENT_PORT, DEFAULT_DIR, LabState, lab_down, lab_up
from consolidator.experiments.lab.record import LabRecorder
from consolidator.experiments.lab.scale import LabPolicy, LabScale, host_names, scale_scenario
from consolidator.experiments.runs import simulate
from consolidator.manager.cluster import Waker
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario, load_scenario

__all__ = ["DEFAULT_DIR", "LabPolicy", "LabScale", "lab_down", "lab_run", "lab_up", "lab_up_for", "libvirt_lab_run",
           "scale_scenario"]
log = logging.getLogger(__name__)


def lab_up_for(folder: Path, scenario: Scenario, link_bytes_per_s: float,
               cpu_caps: dict[str, float] | None = None, prefix: str = "clab",
               agent_port: int = AGENT_PORT) -> LabState:
    """Bring up one lab host per host of the (scaled) scenario, and write its cluster.toml.
    ``cpu_caps``: cores all VMs of a host get together (``LabScale.cpu_caps``); ``prefix`` and
    ``agent_port``: names and ports of this lab (a test gives its own)."""
    h = scenario.hosts[0].power
    state = lab_up(folder, host_names(scenario), link_bytes_per_s, resume_s=h.resume_s, suspend_s=h.suspend_s,
                   prefix=prefix, agent_port=agent_port, cpu_caps=cpu_caps)
    write_cluster_config(state, scenario.hosts, period_s=scenario.tick_s)
    return state


def lab_run(folder: Path, out: Path, scenario_name: str, methods: list[MigrationMethod], scale: LabScale,
            link_bytes_per_s: float, keep: bool, waker: Waker | None = None,
            policy: str | None = None) -> list[dict[str, Any]]:
    """Run each method simulated (the prediction), live, and simulated on the loads measured live;
    write OUT/{sim,live,replay}/<method>/ and OUT/comparison.{json,md}.

    ``policy``: any registered name (default: the scenario's [policy], else the paper's), with the
    scenario's arguments for it, every time argument scaled like the scenario. Brings the lab up
    first if it is not, and down at the end unless ``keep`` (or it was already up). ``waker``: how
    the live runs wake hosts (default: the emulated agents' wake; a
    ``consolidator.power.wake.PowerController`` fits).
    """
    sc = scale_scenario(load_scenario(scenario_name), scale)
    run_policy = LabPolicy.of(sc, scale, policy)  # an unknown name stops here, before the lab is touched
    state = LabState.load(folder)
    made_here = state is None
    if state is None:
        state = lab_up_for(folder, sc, link_bytes_per_s, scale.cpu_caps())
    elif state.cpu_caps != scale.cpu_caps():
        raise UserError(f"the lab is up with host CPU caps {state.cpu_caps}, the run wants {scale.cpu_caps()}; "
                        "run 'consolidator lab down' first", field="cap")
    try:
        return run_and_compare(out, sc, methods, scale, run_policy,
                               lambda method, out_dir: run_live(state, sc, scale, method, out_dir, run_policy, waker))
    finally:
        if made_here and not keep:
            lab_down(folder)


def libvirt_lab_run(out: Path, scenario_name: str, methods: list[MigrationMethod], scale: LabScale,
                    link_bytes_per_s: float, policy: str | None = None) -> list[dict[str, Any]]:
    """``lab_run`` through libvirt: one private libvirtd per host of the scaled scenario, on a network
    of its own, made for this run and removed after it (``libvirt_lab``)."""
    if scale.host_caps:
        raise UserError("host capacities are not emulated through libvirt yet; run without --cap", field="cap")
    if scale.cpu_quota != 1.0:  # uncapped guests (libvirt_lab): a VM's 100 % is one core
        log.info("libvirt lab: guests are not capped, cpu_quota %g -> 1", scale.cpu_quota)
        scale = dataclasses.replace(scale, cpu_quota=1.0)
    sc = scale_scenario(load_scenario(scenario_name), scale)
    run_policy = LabPolicy.of(sc, scale, policy)
    from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run

    why = why_libvirtd_cannot_run()
    if why is not None:
        raise RuntimeError(f"libvirt lab: {why}")
    from consolidator.experiments.lab.libvirt_lab import LibvirtLab  # needs the libvirt binding

    with LibvirtLab(sc, link_bytes_per_s) as lab:
        return run_and_compare(out, sc, methods, scale, run_policy,
                               lambda method, out_dir: lab.run_live(scale, method, out_dir, run_policy),
                               engine="libvirt")


LiveRun = Callable[[MigrationMethod, Path], Coroutine[Any, Any, tuple[RunResult, LabRecorder]]]


def run_and_compare(out: Path, sc: Scenario, methods: list[MigrationMethod], scale: LabScale, policy: LabPolicy,
                    live_run: LiveRun, engine: str = "agent") -> list[dict[str, Any]]:
    """Each method simulated, live (``live_run``, with ``policy``) and simulated on the loads measured
    live; writes OUT/{sim,live,replay}/<method>/ and OUT/comparison.{json,md}, OUT/backlog.json."""
    comparisons: list[dict[str, Any]] = []
    backlogs: list[dict[str, Any]] = []
    args = dict(policy.args)
    for method in methods:
        # the prediction first: it also compiles a literature policy's decision code off the live clock
        sim = simulate(sc, policy.name, method, out_dir=out / "sim" / method.value, policy_args=args)
        log.info("live %s run of %s (%.0f s, %s) through %s", method.value, sc.name, sc.duration_s, policy.name,
                 engine)
        live, recorder = asyncio.run(live_run(method, out / "live" / method.value))
        # the same scenario with the loads the guests really ran (measured live): separates what
        # the loads did to the timeline from what the migration and power models do
        replayed = dataclasses.replace(sc, schedules=recorder.measured_schedules())
        replay = simulate(replayed, policy.name, method, out_dir=out / "replay" / method.value, policy_args=args)
        comparisons.append(compare(live, sim, scale.time_scale) | {"engine": engine})
        backlogs.append(compare_backlog(sim, recorder.guests, scale.time_scale))
        comparisons.append(compare(live, replay, scale.time_scale, against="simulated, measured loads")
                           | {"engine": engine})
    (out / "comparison.json").write_text(json.dumps(comparisons, indent=2) + "\n")
    (out / "backlog.json").write_text(json.dumps(backlogs, indent=2) + "\n")
    caps = ", ".join(f"{h} capacity {c:g}" for h, c in scale.host_caps) or "none"
    extra = [f"Live runs through: {engine}. Policy: {policy.name} {args}. Capped hosts: {caps}.", ""]
    extra += [line for b in backlogs for line in backlog_markdown(b)]
    (out / "comparison.md").write_text(to_markdown(comparisons) + "\n".join(extra) + "\n")
    return comparisons
