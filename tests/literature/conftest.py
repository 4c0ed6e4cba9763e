"""Fixtures of the literature tests: the shared PlanetLab traces (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared from the repository (DESIGN: traces are read in place), or $CONSOLIDATOR_PLANETLAB.
PLANETLAB = Path(os.environ.get("CONSOLIDATOR_PLANETLAB")
                 or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "planetlab")


@pytest.fixture(scope="session")
def planetlab_root() -> Path:
    if not (PLANETLAB / "20110303").is_dir():
        pytest.skip(f"PlanetLab traces not found at {PLANETLAB} (the shared data folder)")
    return PLANETLAB
