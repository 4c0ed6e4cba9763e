"""``lab run``: the scaled scenario live on the lab's agents, once per migration method, each beside
the simulator's prediction of the same scaled scenario, and a comparison of their timelines."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from consolidator.domain.types import MIB, MigrationMethod, PowerState
from consolidator.experiments.lab.cluster_file import write_cluster_config
from consolidator.experiments.lab.lab import LabState
from consolidator.experiments.lab.record import LabHostMeter, LabRecorder
from consolidator.experiments.lab.scale import LabPolicy, LabScale, load_at
from consolidator.experiments.runs import write_run
from consolidator.manager.client import AgentClient, AgentError
from consolidator.manager.cluster import Waker
from consolidator.manager.config import ClusterConfig, load_cluster_config, parse_cluster_config
from consolidator.manager.engine import Engine
from consolidator.manager.service import Hooks, ManagerService
from consolidator.protocol.schemas import VmBody
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario

log = logging.getLogger(__name__)
SETTLE_TIMEOUT_S = 60.0
# The simulator's monitor knows the loads from t = 0; the live one is given one averaging window
# (10 periods) of real samples before t = 0, and the guests a few seconds after boot to settle.
WARMUP_PERIODS = 10
BOOT_SETTLE_S = 3.0


def vm_body(sc: Scenario, j: int, load: float, scale: LabScale) -> VmBody:
    vm = sc.vms[j]
    return VmBody(name=vm.name, mem_mib=vm.mem_mib, vcpus=vm.vcpus, cpu_quota=scale.cpu_quota, load=load,
                  dirty_mib_s=load * vm.dirty_bytes_per_s_at_full / MIB, wws_mib=None)


async def _wait_power(clients: dict[str, AgentClient], want: dict[str, PowerState]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while True:
        states = {h: (await clients[h].host_stats()).power_state for h in want}
        if states == want:
            return
        if loop.time() > deadline:
            raise RuntimeError(f"hosts did not settle: {states}, wanted {want}")
        await asyncio.sleep(0.2)


async def prepare(clients: dict[str, AgentClient], sc: Scenario, scale: LabScale) -> dict[str, PowerState]:
    """Empty every host, wake the sleeping ones, boot the scenario's VMs where it places them, and
    suspend the hosts left without VMs (the simulator starts them suspended).

    The guests boot idle and get their loads once all are up: a work-conserving guest would otherwise
    queue work during a slow boot (tens of seconds on a busy machine) that the simulator never sees."""
    for client in clients.values():
        for vm in await client.list_vms():
            await _destroy(client, vm.name)
        if (await client.host_stats()).power_state is PowerState.SUSPENDED:
            await client.wake()
    await _wait_power(clients, {h: PowerState.ON for h in clients})
    await asyncio.gather(*(_create(clients[sc.placement[v.name]], vm_body(sc, j, 0.0, scale))
                           for j, v in enumerate(sc.vms)))
    for j, v in enumerate(sc.vms):
        body = vm_body(sc, j, load_at(sc.schedules[j], 0.0), scale)
        await clients[sc.placement[v.name]].set_load(v.name, body.load, body.dirty_mib_s)
    used = set(sc.placement.values())
    states = {h: PowerState.ON if h in used else PowerState.SUSPENDED for h in clients}
    for h, state in states.items():
        if state is PowerState.SUSPENDED:
            await clients[h].suspend()
    await _wait_power(clients, states)
    await asyncio.sleep(BOOT_SETTLE_S)
    return states


async def _destroy(client: AgentClient, vm: str) -> None:
    """Destroy a VM left by an earlier run; one still migrating is cancelled (precopy) or waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while True:
        try:
            await client.destroy_vm(vm)
            return
        except AgentError as exc:
            if exc.status == 404:  # gone: its migration completed meanwhile
                return
            if exc.status != 409 or loop.time() > deadline:
                raise
        try:
            await client.cancel_migration(vm)
        except AgentError:
            pass  # postcopy cannot be cancelled once switched over: wait for it
        await asyncio.sleep(0.5)


async def _create(client: AgentClient, body: VmBody, attempts: int = 2) -> None:
    """Boot a VM; one retry, because a TCG guest kernel can fail its boot-time timer check when
    the machine is very busy (seen at a load average of 14 on two cores)."""
    for attempt in range(1, attempts + 1):
        try:
            await client.create_vm(body)
            return
        except AgentError as exc:
            if attempt == attempts or exc.status != 502:
                raise
            log.warning("booting %s failed, retrying: %s", body.name, exc.detail[:200])


# How a live run sets a guest's load on the host it runs on: through the host's agent (default), or
# the guest's control socket (a libvirt lab). Raises AgentError or OSError when it cannot (yet).
LoadSender = Callable[[str, VmBody], Awaitable[None]]


class LoadDriver:
    """Applies the scenario's load schedule to the guests: a change is sent to the VM's current host
    in the background (a slow guest must not delay a tick) and retried while the VM is moving."""

    def __init__(self, service: ManagerService, sc: Scenario, scale: LabScale,
                 send: LoadSender | None = None) -> None:
        self.service, self.sc, self.scale = service, sc, scale
        self.send = send or self._through_agent
        self.applied = [load_at(steps, 0.0) for steps in sc.schedules]
        self.pending: set[asyncio.Task[None]] = set()

    async def before_tick(self, now: float) -> None:
        controller = self.service.loop.controller
        for j, vm in enumerate(self.sc.vms):
            want = load_at(self.sc.schedules[j], now)
            if want == self.applied[j] or vm.name in self.service.cluster.in_flight:
                continue
            self.applied[j] = want
            host = controller.hosts[int(controller.vm_at[controller.vm_index[vm.name]])].name
            body = vm_body(self.sc, j, want, self.scale)
            task = asyncio.create_task(self._send(host, j, body))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _through_agent(self, host: str, body: VmBody) -> None:
        client = self.service.engines[host]
        assert isinstance(client, AgentClient), "the guests of an agent lab take their load from an agent"
        await client.set_load(body.name, body.load, body.dirty_mib_s)

    async def _send(self, host: str, j: int, body: VmBody) -> None:
        try:
            await self.send(host, body)
        except (AgentError, OSError) as exc:
            log.warning("load of %s not set (%s); retrying next tick", body.name, exc)
            self.applied[j] = -1.0


def lab_manager_config(state: LabState, sc: Scenario, scale: LabScale, method: MigrationMethod,
                       out_dir: Path, policy: LabPolicy) -> ClusterConfig:
    """The lab's cluster.toml (written by ``lab up``) for one run: this method and the scenario's
    migration options, the run's policy at the lab's scale, the run store in ``out_dir``, ``auto``
    mode, and limits that stay out of the way (the comparison is with the simulator, which has none)."""
    if not state.cluster_file.exists():
        write_cluster_config(state, sc.hosts, period_s=sc.tick_s)
    return run_config(load_cluster_config(state.cluster_file), sc, scale, method, out_dir, str(state.cluster_file),
                      policy)


def run_config(cfg: ClusterConfig, sc: Scenario, scale: LabScale, method: MigrationMethod, out_dir: Path,
               source: str, policy: LabPolicy) -> ClusterConfig:
    """``cfg`` (a lab's hosts) with one live run's settings (``lab_manager_config``)."""
    mig = sc.migration
    data = cfg.model_dump()
    data.update(
        mode="auto", period_s=sc.tick_s, window_periods=WARMUP_PERIODS, run_store=str(out_dir / "run.sqlite"),
        journal=str(out_dir / "manager.journal.jsonl"),
        overhead_per_vm=sc.overhead_per_vm_cores if scale.overhead == "model" else None,
        policy={"name": policy.name, "args": dict(policy.args)},
        migration={"method": method.value, "max_bandwidth_bytes_per_s": mig.bandwidth_bytes_per_s,
                   "downtime_limit_s": mig.downtime_limit_s, "timeout_s": mig.timeout_s,
                   "on_timeout": mig.on_timeout.value, "hybrid_precopy_rounds": mig.hybrid_rounds},
        limits={"min_hold_s": 0, "max_moves_per_vm_per_hour": 1_000_000, "max_migrations_per_host": 1_000_000,
                "max_migrations_per_minute": 1_000_000, "move_retry_max": 1_000_000, "move_backoff_s": 0,
                "wake_retry_max": 1_000_000, "wake_backoff_s": 0, "drain_timeout_s": 0},
    )
    return parse_cluster_config(data, source)


async def run_live(state: LabState, sc: Scenario, scale: LabScale, method: MigrationMethod,
                   out_dir: Path, policy: LabPolicy, waker: Waker | None = None) -> tuple[RunResult, LabRecorder]:
    """One live run of ``sc`` with ``policy`` and ``method`` by the manager service over the lab's
    cluster.toml; writes its run folder. At its end every guest checks its memory (``bad_pages`` in
    the run's params: pages whose content is not what the guest wrote; 0 when no move damaged any).

    The Power Monitor reads a ``model`` meter per lab host every period (``LabHostMeter``); its
    readings are the run's ``power_samples`` and hosts.csv's watts. ``waker``: how hosts are woken
    (default: cluster.toml's, i.e. the emulated host's agent; a ``PowerController`` fits)."""
    clients = {h: AgentClient(ep, timeout_s=300) for h, ep in state.endpoints().items()}  # boots: up to 240 s
    try:
        power_states = await prepare(clients, sc, scale)
    finally:
        for client in clients.values():
            await client.close()
    config = lab_manager_config(state, sc, scale, method, out_dir, policy)
    return await run_service(config, sc, scale, method, out_dir, power_states,
                             {"link_bytes_per_s": state.link_bytes_per_s}, waker, check=lambda: check_guests(state))


async def run_service(config: ClusterConfig, sc: Scenario, scale: LabScale, method: MigrationMethod,
                      out_dir: Path, power_states: dict[str, PowerState], params: dict[str, object],
                      waker: Waker | None = None, send: LoadSender | None = None,
                      connect_s: float = 0.0, engines: dict[str, Engine] | None = None,
                      check: Callable[[], Awaitable[dict[str, int]]] | None = None) -> tuple[RunResult, LabRecorder]:
    """The manager service over a prepared lab (its guests booted where ``sc`` places them): runs
    ``sc`` to its end with the policy ``config`` names, records it, writes its run folder. ``params``:
    extra run parameters recorded; ``connect_s``: time the service gets before its warm-up to reach
    the hosts (its clock runs meanwhile); ``engines``: the service's (default: built from ``config``);
    ``check``: the guests' page checks after the run (VM -> bad pages, recorded as ``bad_pages``)."""
    recorder = LabRecorder(sc, method, power_states)
    load_before = os.getloadavg()[0]  # the machine is shared: its load explains starved guests
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("run.sqlite", "manager.journal.jsonl"):
        (out_dir / stale).unlink(missing_ok=True)
    hooks = Hooks(warmup_s=WARMUP_PERIODS * sc.tick_s + connect_s, on_warm=lambda now, polled: recorder.warm(polled),
                  waker=waker)
    service = ManagerService(config, engines, hooks=hooks)
    hooks.meters = {h.name: LabHostMeter(recorder, h.name, lambda: service.latest_polled) for h in sc.hosts}
    loads = LoadDriver(service, sc, scale, send)
    hooks.before_tick = loads.before_tick
    hooks.after_tick = lambda now, polled, plan: recorder.tick(
        now, polled, service.loop.controller.vm_at, service.loop.monitor.vm_avg())
    await service.start()
    service.observers.append(recorder.on_event)
    service.power.observers.append(recorder.on_power)
    assert list(service.loop.controller.vm_index) == [v.name for v in sc.vms], "VMs found in the scenario's order"
    ticks = await service.run(asyncio.Event(), until_s=sc.duration_s)
    errors = list(service.cluster.errors)
    step_times = [float(x) for x in np.percentile(service.step_s, [50, 95])] if service.step_s else []
    await service.shutdown()
    if check is not None:
        params = {**params, "bad_pages": await check()}
    extra = {"params": {"lab": True, "time_scale": scale.time_scale, "cpu_quota": scale.cpu_quota,
                        "vm_mem_mib": scale.vm_mem_mib, "overhead": scale.overhead, **params,
                        "policy": config.policy.name, "policy_args": dict(config.policy.args), "ticks": ticks,
                        "errors": errors,
                        "machine_loadavg_1min": [load_before, os.getloadavg()[0]],
                        "tick_wall_s_p50_p95": step_times, "power_monitor": service.power.summary(),
                        "manager": "consolidator manager service over the lab's cluster.toml"}}
    result = recorder.result(config.policy.name, extra)
    write_run(result, out_dir)
    return result, recorder


async def check_guests(state: LabState) -> dict[str, int]:
    """Every running guest's page check (pages not as the guest wrote them), by VM."""
    found: dict[str, int] = {}
    for host, endpoint in state.endpoints().items():
        client = AgentClient(endpoint, timeout_s=60)
        try:
            if (await client.host_stats()).power_state is not PowerState.ON:
                continue
            for vm in await client.list_vms():
                if vm.state.value == "running":
                    found[vm.name] = await client.check_pages(vm.name)
        except AgentError as exc:
            log.warning("page check on %s failed: %s", host, exc)
        finally:
            await client.close()
    return found
