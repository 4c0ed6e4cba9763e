"""CLI: ``consolidator data planetlab`` downloads the public PlanetLab traces into the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(help="Public data sets the commands use (downloaded once, checked, cached).",
                       no_args_is_help=True)


@data_app.command("planetlab")
def planetlab(
    mirror: Annotated[str | None, typer.Option(
        help="A tar.gz URL, a web folder of <day>/<file> with listings, or a local folder "
             "(default: the GitHub repository beloglazov/planetlab-workload-traces).")] = None,
    days: Annotated[str, typer.Option(help="Comma-separated days, or 'all' (the ten days).")] = "all",
    cache: Annotated[Path | None, typer.Option(
        help="Cache folder (default $XDG_CACHE_HOME or ~/.cache, then consolidator/planetlab).")] = None,
) -> None:
    """Download the PlanetLab traces (Beloglazov & Buyya's ten days), check them, keep them in the cache."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn

    from consolidator.traces.fetch import DAYS, fetch_planetlab

    wanted = list(DAYS) if days == "all" else [d.strip() for d in days.split(",") if d.strip()]
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as bar, Progress(TextColumn("{task.description}"), BarColumn(),
                                                   DownloadColumn(), console=console, transient=True) as dl:
        tasks: dict[str, int] = {}

        def tell(what: str, done: int, total: int | None) -> None:
            view = dl if what == "archive" else bar
            if what not in tasks:
                tasks[what] = int(view.add_task(what, total=total))
            view.update(tasks[what], completed=done, total=total)  # type: ignore[arg-type]

        results = fetch_planetlab(wanted, mirror, cache, tell)
    for r in results:
        typer.echo(f"{r.day}  {r.files:5d} files  {'downloaded' if r.downloaded else 'cached'}, checked  {r.folder}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(data_app, name="data")
