"""The manager service (``consolidator manager``): lands in the next commit of issue 9."""

from __future__ import annotations

from consolidator.domain.errors import UserError
from consolidator.manager.config import ClusterConfig


def serve(cfg: ClusterConfig, source: str) -> int:
    """Run the manager until SIGTERM/SIGINT; returns the exit status."""
    del cfg
    raise UserError("the manager service is not in this build yet; only --check works", source=source)
