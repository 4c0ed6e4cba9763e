"""Power Monitor: concurrency under a hanging meter, retries with backoff, trapezoid energy, storage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from consolidator.domain.types import PowerProfile, PowerState
from consolidator.power.emulators.ipmi_sim import IpmiSimBmc
from consolidator.power.emulators.sushy import SushyEmulator
from consolidator.power.ipmi import IpmiMeter
from consolidator.power.meters import Credentials, MeterError, ModelMeter
from consolidator.power.monitor import PowerMonitor
from consolidator.power.redfish import RedfishMeter
from consolidator.storage import open_store


class Clock:
    """Injected virtual clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Hanging:
    """Test double for a meter whose peer never answers (its thread sleeps past every timeout)."""

    kind = "ipmi"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def read_watts(self) -> float:
        self.calls += 1
        time.sleep(self.seconds)
        return 1.0


class Failing:
    """Test double for a meter that refuses every read."""

    kind = "redfish"

    def __init__(self) -> None:
        self.calls = 0

    def read_watts(self) -> float:
        self.calls += 1
        raise MeterError("BMC said no")


def _model(load: list[float]) -> ModelMeter:
    # the paper's host: 53 W idle + 47 W * load (one-core unit, DESIGN §2)
    return ModelMeter(PowerProfile(), 4.0, lambda: (PowerState.ON, load[0]))


def test_a_hanging_meter_does_not_stall_the_others() -> None:
    clock = Clock()
    hanging = Hanging(2.0)
    monitor = PowerMonitor({"pm0": _model([0.5]), "pm1": hanging}, clock, timeout_s=0.2)

    async def two_periods() -> tuple[list[float], list[object]]:
        durations, reports = [], []
        for t in (0.0, 1.0):
            clock.now = t
            start = time.monotonic()
            reports.append(await monitor.sample())
            durations.append(time.monotonic() - start)
        return durations, reports

    durations, reports = asyncio.run(two_periods())
    monitor.close()
    assert max(durations) < 1.5  # bounded by the 0.2 s timeout (plus scheduling), not the 2 s hang
    first, second = reports
    assert first.watts == {"pm0": 76.5, "pm1": None}  # type: ignore[attr-defined]
    assert first.errors == {"pm1": "no reading within 0.2 s"}  # type: ignore[attr-defined]
    assert second.errors == {"pm1": "previous read still running"}  # type: ignore[attr-defined]
    assert hanging.calls == 1  # not started twice while stuck
    assert second.total_watts == 76.5  # type: ignore[attr-defined]


def test_energy_is_the_trapezoid_of_good_readings() -> None:
    clock, load = Clock(), [0.0]
    monitor = PowerMonitor({"pm0": _model(load)}, clock)

    async def run() -> None:
        for t, value in ((0.0, 0.0), (1.0, 1.0), (3.0, 1.0), (4.0, 0.0)):
            clock.now, load[0] = t, value
            await monitor.sample()

    asyncio.run(run())
    monitor.close()
    # 53 -> 100 over 1 s, 100 for 2 s, 100 -> 53 over 1 s
    assert monitor.energy_ws()["pm0"] == pytest.approx(76.5 + 200.0 + 76.5)


def test_failures_are_stored_retried_and_backed_off(tmp_path: Path) -> None:
    clock, failing = Clock(), Failing()
    with open_store(tmp_path / "run.sqlite") as store:
        monitor = PowerMonitor({"pm0": _model([1.0]), "pm1": failing}, clock, sink=store, backoff_after=2,
                               backoff_max_periods=4)

        async def run() -> None:
            for t in range(12):
                clock.now = float(t)
                await monitor.sample()

        asyncio.run(run())
        monitor.close()
        # read at 0, 1 (2 failures: skip 1), 3 (skip 3), 7 (skip 4 = cap), 12 would be next
        assert failing.calls == 4
        stored = store.power_window("pm1", 0.0, 100.0)
        assert [s.t_s for s in stored] == [0.0, 1.0, 3.0, 7.0]
        assert all(s.watts is None and s.error == "MeterError: BMC said no" for s in stored)
        assert len(store.power_window("pm0", 0.0, 100.0)) == 12


def test_run_loop_keeps_the_period_and_stops() -> None:
    clock = Clock()
    monitor = PowerMonitor({"pm0": _model([0.0])}, clock)
    stop = asyncio.Event()
    seen: list[float] = []

    async def fake_sleep(s: float) -> None:
        clock.now += s
        if clock.now >= 5.0:
            stop.set()

    asyncio.run(monitor.run(1.0, stop, on_report=lambda r: seen.append(r.t_s), sleep=fake_sleep))
    monitor.close()
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.services
def test_real_meters_side_by_side_with_a_dead_one(bmc: IpmiSimBmc, redfish: SushyEmulator,
                                                  creds: Credentials) -> None:
    clock = Clock()
    meters = {"pm0": IpmiMeter("127.0.0.1", creds, bmc.port), "pm1": RedfishMeter(redfish.url, creds),
              "pm2": IpmiMeter("127.0.0.1", creds, 9)}  # nothing answers there
    redfish.set_watts(91.5)
    monitor = PowerMonitor(meters, clock, timeout_s=3.0)

    async def one() -> tuple[object, float]:
        start = time.monotonic()
        report = await monitor.sample()
        return report, time.monotonic() - start

    report, elapsed = asyncio.run(one())
    monitor.close()
    assert report.watts == {"pm0": 77.0, "pm1": 91.5, "pm2": None}  # type: ignore[attr-defined]
    assert report.total_watts == 77.0 + 91.5  # type: ignore[attr-defined]
    assert elapsed < 4.5  # the dead BMC's ipmitool would take ~6 s; the monitor stops waiting at 3 s
