"""Shared fixtures: hand-made experiment folders (see report_fixtures.py: scripted, not simulator output)."""

from __future__ import annotations

from pathlib import Path

import pytest
import report_fixtures


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT with a one-seed `simple` and a three-seed `complex` experiment (hand-made)."""
    out = tmp_path_factory.mktemp("out")
    report_fixtures.write_experiment(out, "simple", (0,), duration_s=300)
    report_fixtures.write_experiment(out, "complex", (0, 1, 2), duration_s=240)
    return out
