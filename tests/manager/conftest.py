"""Manager tests reuse the agent tests' driver double and in-process agents (tests/agent/agent_doubles)."""

from __future__ import annotations

import sys
from pathlib import Path

AGENT_TESTS = str(Path(__file__).resolve().parents[1] / "agent")
if AGENT_TESTS not in sys.path:
    sys.path.insert(0, AGENT_TESTS)
