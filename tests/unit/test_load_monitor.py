"""The Load Monitor: windowed averages, stale samples, overhead, write-through to the sink."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.control.monitor import LoadMonitor, RingAverage
from consolidator.domain.samples import HostSample, VmSample


class ListSink:
    """Keeps what it is given (a real SQLite sink is tested in tests/storage)."""

    def __init__(self) -> None:
        self.hosts: list[HostSample] = []
        self.vms: list[VmSample] = []
        self.events: list[object] = []

    def write_host_samples(self, samples):  # type: ignore[no-untyped-def]
        self.hosts.extend(samples)

    def write_vm_samples(self, samples):  # type: ignore[no-untyped-def]
        self.vms.extend(samples)

    def write_event(self, event):  # type: ignore[no-untyped-def]
        self.events.append(event)

    def flush(self) -> None:
        pass


def test_ring_average_over_the_last_window() -> None:
    ring = RingAverage(1, 3)
    for value, mean in [(3.0, 3.0), (6.0, 4.5), (9.0, 6.0), (0.0, 5.0)]:
        ring.push(np.array([value]))
        assert ring.mean()[0] == pytest.approx(mean)


def test_ten_second_average_and_latest_values() -> None:
    sink = ListSink()
    m = LoadMonitor(["h"], ["v"], sink, window_periods=10)
    for t in range(20):
        load = 0.8 if t < 15 else 0.4
        m.record_host(HostSample(float(t), "h", load + 0.05))
        m.record_vm(VmSample(float(t), "v", "h", load))
        m.close_period(float(t))
    assert m.latest_vm("v") == 0.4
    assert m.average_vm("v") == pytest.approx((5 * 0.8 + 5 * 0.4) / 10)
    assert m.host_overhead_now()[0] == pytest.approx(0.05)
    assert m.vm_short()[0] == pytest.approx(0.4)  # the short window (3 periods) has seen only the new level
    assert m.host_short()[0] == pytest.approx(0.45)
    assert len(sink.hosts) == 20 and len(sink.vms) == 20


def test_missing_samples_keep_the_last_value_and_count_staleness() -> None:
    m = LoadMonitor(["h"], ["v"], ListSink(), window_periods=2)
    m.record_vm(VmSample(0.0, "v", "h", 0.5))
    m.close_period(0.0)
    m.close_period(1.0)
    assert m.average_vm("v") == pytest.approx(0.5)
    assert m.stale_periods[1] == 1


def test_unknown_names_are_rejected() -> None:
    m = LoadMonitor(["h"], ["v"], ListSink())
    with pytest.raises(KeyError):
        m.record_vm(VmSample(0.0, "nope", "h", 0.1))
