"""The Power Monitor in a live run: one sample per period, off the control loop's critical path.

The manager service starts ``PowerSampler.kick()`` after each poll (and plan); the sample runs as its own
asyncio task (each meter in a worker thread under the monitor's timeout), so a slow or dead meter
never delays a tick. A sample still running when the next period starts is not doubled: that
period's kick is counted in ``overlapped`` and logged. Readings (failed ones too, with their error)
go to the run store through the monitor's sink; every report also goes to ``observers``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from consolidator.domain.errors import UserError
from consolidator.domain.samples import PowerReport
from consolidator.domain.types import HostSpec, PowerState
from consolidator.power.config import PowerConfig
from consolidator.power.meters import Meter, ModelMeter
from consolidator.power.monitor import PowerMonitor

if TYPE_CHECKING:
    from consolidator.manager.poller import PolledStats

log = logging.getLogger(__name__)

# the monitor's timeout as a share of the period when the caller does not give one (0.8 s of 1 s)
TIMEOUT_SHARE = 0.8


class PowerSampler:
    """Runs ``monitor.sample()`` once a period as a background task; counts what went wrong."""

    def __init__(self, monitor: PowerMonitor, timeout_s: float | None = None) -> None:
        self.monitor = monitor
        self._fixed_timeout = timeout_s is not None
        if timeout_s is not None:
            monitor.timeout_s = timeout_s
        self.observers: list[Callable[[PowerReport], None]] = []
        self.samples = 0  # samples completed
        self.overlapped = 0  # periods whose kick found the previous sample still running
        self.failures: dict[str, int] = {name: 0 for name in monitor.meters}  # failed readings per node
        self.last_error: dict[str, str] = {}
        self.errors: list[str] = []  # samples that failed as a whole (e.g. the store refused the rows)
        self.last: PowerReport | None = None
        self._task: asyncio.Task[None] | None = None

    def fit_period(self, period_s: float) -> None:
        """Unless a timeout was given, make the meters' timeout 0.8 of the period (a reading must
        come before the next period's)."""
        if not self._fixed_timeout:
            self.monitor.timeout_s = TIMEOUT_SHARE * period_s

    def kick(self) -> bool:
        """Start this period's sample unless the previous one still runs; never waits."""
        if self._task is not None and not self._task.done():
            self.overlapped += 1
            log.warning("power sample still running at the next period; this period is not sampled")
            return False
        self._task = asyncio.create_task(self._sample(), name="power-sample")
        return True

    async def _sample(self) -> None:
        try:
            report = await self.monitor.sample()
        except Exception as exc:  # the sink (run store) may fail; the loop goes on, the error is kept
            log.warning("power sample failed: %s", exc)
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.samples += 1
        self.last = report
        for node, error in report.errors.items():
            if error != "skipped":  # a node in back-off is not read this period
                self.failures[node] += 1
                self.last_error[node] = error
        for observer in self.observers:
            observer(report)

    async def stop(self) -> None:
        """Wait for a running sample (bounded by the monitor's timeout) and release the meters' threads."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self._task, self.monitor.timeout_s + 1.0)
            except TimeoutError:
                log.warning("power sample did not finish at the end of the run")
        self.monitor.close()

    def summary(self) -> dict[str, Any]:
        """For a run's record: samples, overlapped periods, failed readings per node, last errors."""
        return {"samples": self.samples, "overlapped_periods": self.overlapped,
                "failed_readings": dict(self.failures), "last_errors": dict(self.last_error),
                "sample_errors": list(self.errors),
                "energy_ws": self.monitor.energy_ws()}


def polled_load(latest: Callable[[], Mapping[str, PolledStats]],
                host: str) -> Callable[[], tuple[PowerState, float]]:
    """A ``ModelMeter`` load source from a live session's latest poll: the agent's power state and
    the host's load (cores; lab units on an emulated host). A host that did not answer counts as
    suspended with no load (a real host that is down draws its suspended/off power at most)."""

    def load() -> tuple[PowerState, float]:
        stats = latest().get(host)
        if stats is None:
            return PowerState.SUSPENDED, 0.0
        state = stats.raw.power_state
        return state, stats.host.cpu_load if state is PowerState.ON else 0.0

    return load


def config_meters(cfg: PowerConfig, hosts: Sequence[HostSpec],
                  latest: Callable[[], Mapping[str, PolledStats]]) -> dict[str, Meter]:
    """Every node's meter for a live session from a power configuration file
    (``consolidator.power.config.load_power_config``): its network meters (IPMI, Redfish, RAPL) as
    they are, and a ``ModelMeter`` on the polled load for each ``meter = "model"`` node (the host's
    power profile and cores from ``hosts``). A node the cluster does not have is a UserError."""
    specs = {h.name: h for h in hosts}
    unknown = sorted((set(cfg.meters) | set(cfg.model_nodes)) - set(specs))
    if unknown:
        raise UserError(f"power configuration names hosts the cluster does not have: {', '.join(unknown)}",
                        field="hosts")
    meters: dict[str, Meter] = dict(cfg.meters)
    for name in cfg.model_nodes:
        meters[name] = ModelMeter(specs[name].power, specs[name].cores, polled_load(latest, name))
    return meters
