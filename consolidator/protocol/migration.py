"""The options of one live migration, as the manager configures them and the agent's API accepts them."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class OnTimeout(enum.Enum):
    CANCEL = "cancel"  # precopy that has not converged is cancelled; the guest keeps running at the source
    POSTCOPY = "postcopy"  # ... or switched to postcopy, which always finishes


class MigrationOptions(BaseModel):
    """DESIGN §4 defaults: 120 MB/s, 300 ms downtime limit, 60 s before a precopy is given up.

    ``cluster.toml``'s ``[migration]`` table, the agent's migrate body and the libvirt engine's flags
    all read these fields, with these bounds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    max_bandwidth_bytes_per_s: float | None = Field(default=120e6, gt=0, le=1e12, description="null: no cap")
    downtime_limit_s: float = Field(default=0.3, gt=0, le=60)
    timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    on_timeout: OnTimeout = OnTimeout.CANCEL
    hybrid_precopy_rounds: int = Field(default=1, ge=1, le=1000, description="hybrid: precopy passes before postcopy")

    def options(self) -> MigrationOptions:
        """Only the options (of a subclass that adds fields: the migrate body, ``[migration]``)."""
        return MigrationOptions(**self.model_dump(include=set(MigrationOptions.model_fields)))


DEFAULT_OPTIONS = MigrationOptions()
