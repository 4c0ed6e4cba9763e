"""CLI: ``consolidator policies`` lists every policy the loop can run, from the one registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def policies(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {name, params, summary}.")] = False,
) -> None:
    """List the policies (the paper's, ours, baselines, the literature's) with their parameters."""
    from consolidator.policies.registry import ENTRIES, describe

    if as_json:
        typer.echo(json.dumps(describe()))
        return
    for entry in ENTRIES.values():
        typer.echo(f"{entry.name:<14} {entry.summary}")
        if entry.params:
            args = ", ".join(f"{p.name}={int(p.number) if p.kind is int else p.number:g}" for p in entry.params)
            typer.echo(f"{'':<14}   parameters: {args}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("policies")(policies)
