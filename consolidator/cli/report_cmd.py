"""CLI of the report area: ``consolidator report OUT_DIR`` rebuilds the report from stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="Output folder of `consolidator reproduce`, or one run folder of `consolidator simulate --out`."
        ),
    ],
    show_tables: Annotated[
        bool, typer.Option("--tables/--no-tables", help="Print each Table IV in the terminal.")
    ] = True,
) -> None:
    """Rebuild OUT_DIR/report.html, report.md and figures/ from the stored run folders."""
    from rich.console import Console

    from consolidator.reports import build_report
    from consolidator.reports.layout import find_experiments
    from consolidator.reports.table import load_table, table_view, to_rich

    html_path = build_report(out_dir)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or file has no width: do not fold the table at 80 columns
    if show_tables:
        for experiment in find_experiments(out_dir):
            if experiment.table_path is not None:
                console.print(to_rich(table_view(load_table(experiment.table_path))))
    console.print(f"report: {html_path}  (Markdown: {html_path.with_suffix('.md')})", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("report")(report)
