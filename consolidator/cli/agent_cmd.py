"""CLI commands of the agent area: ``consolidator agent`` (one host) and ``consolidator lab``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("agent")
    def agent(
        config: Annotated[Path, typer.Option("--config", help="the host's host.toml")],
    ) -> None:
        """Run a host agent: the HTTP API over this host's QEMU VMs (see docs/agent.md)."""
        from consolidator.agent.serve import serve

        serve(config)
