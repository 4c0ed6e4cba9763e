"""The manager's mode (config ``mode``, API ``/api/mode``, run store meta): recommend or apply plans."""

from __future__ import annotations

from consolidator.domain.types import Vocabulary


class ManagerMode(Vocabulary):
    RECOMMEND = "recommend"  # plans are shown (dashboard, API), never applied
    AUTO = "auto"  # plans are applied
