"""How the manager asks for every migration of a run (shared by RemoteCluster and every engine)."""

from __future__ import annotations

from dataclasses import dataclass

from consolidator.agent.hypervisor import OnTimeout


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    """DESIGN §4 defaults: 120 MB/s, 300 ms downtime limit, 60 s before a precopy is given up."""

    max_bandwidth_bytes_per_s: float | None = 120e6
    downtime_limit_s: float = 0.3
    timeout_s: float = 60.0
    on_timeout: OnTimeout = OnTimeout.CANCEL
    hybrid_precopy_rounds: int = 1


DEFAULT_OPTIONS = MigrationOptions()
