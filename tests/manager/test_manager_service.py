"""The manager service over in-process agents (driver double): modes, discovery, UNKNOWN hosts,
restart with a migration in flight, rules, metrics. Real QEMU: test_manager_qemu.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from service_doubles import Cluster

from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationOutcome, PowerState
from consolidator.manager.mode import ManagerMode
from consolidator.manager.service import ManagerService
from consolidator.protocol.schemas import VmBody


async def run_for(service: ManagerService, seconds: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await service.run(stop)


async def run_until(service: ManagerService, check, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Run the service until ``check()`` holds (periods may overrun on a loaded machine)."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(check, timeout_s)
    finally:
        stop.set()
        await task


async def until(check, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def boot(cluster: Cluster, host: str, name: str, load: float) -> None:
    engine = cluster.engines()[host]
    await engine.create_vm(VmBody(name=name, mem_mib=256, load=load))  # type: ignore[attr-defined]
    await engine.close()


def test_recommend_applies_nothing_then_auto_consolidates(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 1.0)  # the warehouse is overloaded: the paper moves vm0 out
        await boot(cluster, "pm0", "vm1", 0.05)
        service = cluster.manager(mode="recommend")
        await service.start()
        await run_until(service, lambda: len(service.telemetry.pending(10)) > 0)
        await run_for(service, 0.5)
        assert cluster.migrations() == []  # nothing applied
        assert all(set(d.mutating_calls()) <= {"create_vm"} for d in cluster.drivers.values())
        pending = service.telemetry.pending(10)
        assert pending and pending[-1]["prediction"]["moves"] >= 1
        kinds = {a["kind"] for p in pending for a in p["actions"]}
        assert "migrate" in kinds and "suspend" in kinds
        assert pending[-1]["prediction"]["risk"]["postcopy_moves"] >= 1
        service.set_mode(ManagerMode.AUTO, by="test")
        await run_until(service, lambda: bool(cluster.migrations()) and not service.cluster.in_flight
                        and service.telemetry.vms["vm0"].host != "pm0"
                        and sum(h.state == "on" for h in service.telemetry.hosts.values()) == 2)
        status = service.telemetry.status()
        await service.shutdown()
        assert [m.split()[0] for m in cluster.migrations()] == ["vm0"]
        where = {v["name"]: v["host"] for v in status["vms"]}
        assert where["vm0"] != "pm0" and where["vm1"] == "pm0"
        states = {h["name"]: h["state"] for h in status["hosts"]}
        assert sorted(states.values()).count("on") == 2  # the third host was suspended
        journal = [json.loads(x) for x in (tmp_path / "run.journal.jsonl").read_text().splitlines()]
        assert [j["new"] for j in journal if j["kind"] == "mode"] == ["auto"]
        assert any(j["kind"] == "plan" and j["applied"] for j in journal)
        assert any(j["kind"] == "plan" and not j["applied"] for j in journal)

    asyncio.run(main())


def test_vms_created_and_destroyed_outside_are_picked_up(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 0.1)
        service = cluster.manager(mode="recommend")
        await service.start()
        await run_for(service, 0.3)
        assert set(service.loop.controller.vm_index) == {"vm0"}
        await boot(cluster, "pm1", "web", 0.2)
        await run_until(service, lambda: set(service.loop.controller.vm_index) == {"vm0", "web"})
        engine = cluster.engines()["pm0"]
        await engine.destroy_vm("vm0")
        await run_until(service, lambda: set(service.loop.controller.vm_index) == {"web"})
        assert [v["name"] for v in service.telemetry.status()["vms"]] == ["web"]
        await service.shutdown()

    asyncio.run(main())


def test_host_that_stops_answering_is_unknown_and_never_a_target(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 0.1)
        service = cluster.manager(mode="auto", limits={"unknown_after_misses": 2, "reserve_hosts": 2})
        await service.start()
        await run_for(service, 0.4)
        cluster.transports["pm1"].down = True
        await run_until(service, lambda: "pm1" in service.unknown)
        await run_for(service, 0.2)
        hosts = {h["name"]: h for h in service.telemetry.status()["hosts"]}
        assert hosts["pm1"]["state"] == "unknown" and hosts["pm1"]["watts"] is None
        snap = service.loop.snapshot(service.now())
        assert PowerState.from_code(snap.host_state[1]) is PowerState.FAILED  # never a target
        cluster.transports["pm1"].down = False
        await run_until(service, lambda: service.telemetry.hosts["pm1"].state == "on")
        await service.shutdown()

    asyncio.run(main())


def test_restart_adopts_the_migration_in_flight_and_starts_no_other(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, migrate_s=1.5)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 1.0)
        first = cluster.manager(mode="auto")
        await first.start()
        await run_for(first, 0.4)
        await until(lambda: bool(cluster.migrations()))
        # "SIGKILL": the first manager is dropped without shutdown (its tasks cancelled, nothing flushed)
        await first.forwarder.stop()
        second = cluster.manager(mode="auto")
        await second.start()
        assert list(second.cluster.in_flight) == ["vm0"]
        seen: list[object] = []
        second.observers.append(seen.append)
        await run_until(second, lambda: not second.cluster.in_flight)
        await second.shutdown()
        assert len(cluster.migrations()) == 1  # no duplicate
        finished = [e for e in seen if isinstance(e, MigrationFinished)]
        assert [(e.vm, e.outcome) for e in finished] == [("vm0", MigrationOutcome.COMPLETED)]
        c = second.loop.controller
        assert c.hosts[int(c.vm_at[c.vm_index["vm0"]])].name != "pm0"

    asyncio.run(main())


def test_rules_refuse_and_count(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 1.0)
        service = cluster.manager(mode="auto", vms={"vm0": {"pin": True}}, limits={"reserve_hosts": 2})
        await service.start()
        await run_until(service, lambda: {"pin", "reserve"} <= set(service.telemetry.refusal_counts))
        await service.shutdown()
        assert cluster.migrations() == []
        counts = service.telemetry.refusal_view(10)["counts"]
        assert counts["pin"] >= 1 and counts["reserve"] >= 1
        body = service.telemetry.metrics.exposition().decode()
        assert 'consolidator_rule_refusals_total{rule="pin"}' in body

    asyncio.run(main())


def test_a_real_host_that_answers_on_is_on_again(tmp_path: Path) -> None:
    """A real host powered off (sleep = "off") comes back with a new agent that sends no resume event:
    the manager takes its answering "on" as the news. Recommend mode: nothing is ever suspended here."""
    cluster = Cluster(tmp_path, emulated=False)

    async def main() -> None:
        service = cluster.manager(mode="recommend")
        await service.start()
        c = service.loop.controller
        c.host_state[c.host_index["pm2"]] = 3  # RESUMING: woken, no event came
        seen: list[object] = []
        service.observers.append(seen.append)
        await run_until(service, lambda: service.telemetry.hosts.get("pm2") is not None
                        and service.telemetry.hosts["pm2"].state == "on")
        await service.shutdown()
        assert [(e.host, e.state.value, e.detail) for e in seen  # type: ignore[attr-defined]
                if isinstance(e, HostPowerChanged)] == [("pm2", "on", "answers: on")]

    asyncio.run(main())
