"""Power Monitor: reads every node's meter once a period, concurrently, and integrates energy.

Each meter runs in its own worker thread under ``timeout_s``; a meter that times out or fails is
reported (a PowerSample with ``watts=None`` and the error), retried next period, and after
``backoff_after`` failures in a row polled less often (every 2, 4, ... up to ``backoff_max_periods``
periods). A read still hanging from an earlier period is not started again. So one dead BMC never
delays the others or the loop. Energy per node is the trapezoid between consecutive good readings.
The clock is injected: ``sample()`` takes its time from ``clock()``; ``run()`` is the wall-clock loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from consolidator.domain.samples import PowerReport, PowerSample
from consolidator.power.meters import Meter

log = logging.getLogger(__name__)


class PowerSink(Protocol):
    def write_power_samples(self, samples: list[PowerSample]) -> None: ...


@dataclass
class _NodeState:
    failures: int = 0
    skip_periods: int = 0
    busy: bool = False
    last: tuple[float, float] | None = None  # (t_s, watts) of the last good reading
    energy_ws: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class PowerMonitor:
    """Samples ``meters`` (node name -> Meter) and writes every reading to ``sink`` (a RunStore)."""

    def __init__(self, meters: Mapping[str, Meter], clock: Callable[[], float], sink: PowerSink | None = None,
                 timeout_s: float = 0.8, backoff_after: int = 3, backoff_max_periods: int = 30) -> None:
        self.meters = dict(meters)
        self.clock = clock
        self.sink = sink
        self.timeout_s = timeout_s
        self.backoff_after = backoff_after
        self.backoff_max_periods = backoff_max_periods
        self._nodes = {name: _NodeState() for name in self.meters}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.meters)), thread_name_prefix="meter")

    async def sample(self) -> PowerReport:
        """Read every due meter at once; returns within about ``timeout_s`` whatever the meters do."""
        t_s = self.clock()
        names = list(self.meters)
        results = await asyncio.gather(*(self._read(name) for name in names))
        watts: dict[str, float | None] = {}
        errors: dict[str, str] = {}
        samples = []
        for name, (value, error) in zip(names, results, strict=True):
            watts[name] = value
            if error is not None:
                errors[name] = error
            else:
                self._integrate(name, t_s, value)  # type: ignore[arg-type]
            if error != "skipped":
                samples.append(PowerSample(t_s, name, self.meters[name].kind, value, error))
        if self.sink is not None and samples:
            self.sink.write_power_samples(samples)
        return PowerReport(t_s, watts, errors, sum(w for w in watts.values() if w is not None),
                           self.energy_ws(), sum(self.energy_ws().values()))

    def energy_ws(self) -> dict[str, float]:
        return {name: st.energy_ws for name, st in self._nodes.items()}

    async def _read(self, name: str) -> tuple[float | None, str | None]:
        st = self._nodes[name]
        if st.skip_periods > 0:
            st.skip_periods -= 1
            return None, "skipped"
        if st.busy:
            return None, self._failed(name, "previous read still running")
        loop = asyncio.get_running_loop()
        with st.lock:
            st.busy = True  # cleared by the worker when the read returns, however late
        future = loop.run_in_executor(self._pool, self._blocking_read, name)
        try:
            value = await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            return None, self._failed(name, f"no reading within {self.timeout_s:g} s")
        except Exception as exc:  # a meter may raise anything; it is reported, never propagated
            return None, self._failed(name, f"{type(exc).__name__}: {exc}")
        st.failures = 0
        return value, None

    def _blocking_read(self, name: str) -> float:
        st = self._nodes[name]
        try:
            return float(self.meters[name].read_watts())
        finally:
            with st.lock:
                st.busy = False

    def _failed(self, name: str, error: str) -> str:
        st = self._nodes[name]
        st.failures += 1
        if st.failures >= self.backoff_after:
            st.skip_periods = min(2 ** (st.failures - self.backoff_after + 1) - 1, self.backoff_max_periods)
        log.warning("meter %s (%s) failed %d time(s) in a row: %s", name, self.meters[name].kind,
                    st.failures, error)
        return error

    def _integrate(self, name: str, t_s: float, watts: float) -> None:
        st = self._nodes[name]
        if st.last is not None and t_s > st.last[0]:
            st.energy_ws += (st.last[1] + watts) / 2.0 * (t_s - st.last[0])
        st.last = (t_s, watts)

    async def run(self, period_s: float, stop: asyncio.Event,
                  on_report: Callable[[PowerReport], None] | None = None,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Sample every ``period_s`` on ``clock`` until ``stop`` is set (periods are not skipped by drift)."""
        next_t = self.clock()
        while not stop.is_set():
            report = await self.sample()
            if on_report is not None:
                on_report(report)
            next_t += period_s
            delay = next_t - self.clock()
            if delay < 0:  # a period overran: start again from now rather than burst
                next_t = self.clock()
                delay = 0.0
            await sleep(delay)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
