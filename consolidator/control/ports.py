"""The ports: the only way the control loop touches the world (simulated or real).

A port call *requests* a side effect and returns at once; the outcome comes back later as an
event passed to ``ControlLoop.on_event`` (a MigrationFinished, a HostPowerChanged). The simulator
(`consolidator.sim`) and the live cluster over host agents (`consolidator.manager`) implement
``ClusterPort``; run stores (`consolidator.storage`) implement ``SampleSink``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from consolidator.domain.events import Event
from consolidator.domain.samples import HostSample, VmSample
from consolidator.domain.types import MigrationMethod


class ClusterPort(Protocol):
    """Commands the VM Controller issues. Each returns at once; results arrive as events."""

    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None: ...

    def cancel_migration(self, vm: str) -> None: ...

    def suspend_host(self, host: str) -> None: ...

    def wake_host(self, host: str) -> None: ...


class SampleSink(Protocol):
    """Where the Load Monitor stores every sample and event (a run database)."""

    def write_host_samples(self, samples: Sequence[HostSample]) -> None: ...

    def write_vm_samples(self, samples: Sequence[VmSample]) -> None: ...

    def write_event(self, event: Event) -> None: ...

    def flush(self) -> None: ...


class NullSink:
    """A sink that keeps nothing: for benchmarks and for callers that store elsewhere."""

    def write_host_samples(self, samples: Sequence[HostSample]) -> None:
        pass

    def write_vm_samples(self, samples: Sequence[VmSample]) -> None:
        pass

    def write_event(self, event: Event) -> None:
        pass

    def flush(self) -> None:
        pass
