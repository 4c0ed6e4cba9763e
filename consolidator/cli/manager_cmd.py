"""CLI of the manager service: ``consolidator manager --config cluster.toml [--check] [--listen HOST:PORT]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from consolidator.domain.errors import UserError


def manager(
    config: Annotated[Path, typer.Option("--config", help="cluster.toml: hosts, policy, rules, limits")],
    check: Annotated[bool, typer.Option("--check", help="validate and print the resolved configuration "
                                                        "as JSON, then exit")] = False,
    listen: Annotated[str | None, typer.Option("--listen", help="HOST:PORT of the API, dashboard and "
                                                                "/metrics (overrides 'listen')")] = None,
) -> None:
    """Manage a real cluster: discover VMs on the hosts, plan every period, and (mode "auto") move
    VMs and host power states; "recommend" records and shows every plan without applying it."""
    from consolidator.manager.config import load_cluster_config, resolved_json

    cfg = load_cluster_config(config)
    if listen is not None:
        cfg = cfg.model_copy(update={"listen": listen})
        try:
            cfg.listen_address()
        except UserError as exc:
            raise UserError(exc.message, field="--listen") from None
    if check:
        typer.echo(json.dumps(resolved_json(cfg), indent=2))
        return
    from consolidator.manager.daemon import serve

    raise typer.Exit(serve(cfg, str(config)))


def register(app: typer.Typer) -> None:
    app.command("manager")(manager)
