"""Table IV of the paper from ``OUT/<scenario>/table.json``: for the terminal (rich), Markdown and HTML.

Our measured columns stand beside the paper's (energy, saved %, and the share of the gap to ideal
removed, which we derive from the paper's energies as (E_none - E_x) / (E_none - E_ideal)).
Optional keys may be missing: an empty cell shows "—", never a made-up number.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from rich import box
from rich.markup import escape
from rich.table import Table

from consolidator.reports.runs import read_model

ROW_ORDER = ("none", "ideal", "postcopy", "precopy")
DASH = "—"


class Row(BaseModel):
    """One variant's figures (means over seeds, ``*_sd`` their sample standard deviations)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    energy_ws: float | None = None
    energy_ws_sd: float | None = None
    saved_pct: float | None = None
    saved_pct_sd: float | None = None
    gap_removed_pct: float | None = None
    gap_removed_pct_sd: float | None = None
    unserved_cpu_pct: float | None = None
    unserved_cpu_pct_sd: float | None = None
    migrations: float | None = None
    migrations_sd: float | None = None
    # equal work (issue 8): energy until every backlog is served, the gap it removes, the delay of work
    energy_to_complete_ws: float | None = None
    energy_to_complete_ws_sd: float | None = None
    gap_removed_complete_pct: float | None = None
    gap_removed_complete_pct_sd: float | None = None
    delay_mean_s: float | None = None
    delay_mean_s_sd: float | None = None
    delay_p95_s: float | None = None
    delay_p95_s_sd: float | None = None
    work_served_core_s: float | None = None
    note: str | None = None


class PaperRow(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    energy_ws: float | None = None
    saved_pct: float | None = None
    gap_removed_pct: float | None = None  # derived from the energies when absent


class TableFile(BaseModel):
    """The whole of ``table.json`` as the lead's ``consolidator reproduce`` writes it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scenario: str
    seeds: list[int] = []
    rows: dict[str, Row]
    paper: dict[str, PaperRow] = {}
    notes: list[str] = []
    own_policy: str | None = None


@dataclass(frozen=True)
class TableView:
    """The table as text cells, ready for any renderer."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]


HEADER = (
    "run",
    "energy to complete (Ws)",
    "gap removed, complete (%)",
    "delay mean (s)",
    "delay p95 (s)",
    "window energy (Ws)",
    "paper (Ws)",
    "saved (%)",
    "paper saved (%)",
    "gap removed, window (%)",
    "paper gap removed (%)",
    "unserved CPU (%)",
    "migrations",
)
# The column to read first (equal work), then the paper's fixed-window measure beside its Table IV.
COMPLETE, GAP_COMPLETE, DELAY_MEAN, DELAY_P95, ENERGY, PAPER_ENERGY, SAVED, PAPER_SAVED, GAP, PAPER_GAP = range(1, 11)


# Two-line headers: the numbers, not the words, set the column widths (fits 80 columns at 20 seeds).
RICH_HEADER = ("energy to\ncomplete Ws", "gap\nremoved %", "delay\np95 s", "window\nenergy Ws", "window\ngap %")


def load_table(path: Path) -> TableFile:
    """Parse and validate a table.json; a malformed one is a UserError naming the file and field."""
    return read_model(path, TableFile)


def _cell(mean: float | None, sd: float | None, fmt: str, with_sd: bool) -> str:
    if mean is None:
        return DASH
    text = format(mean, fmt)
    return f"{text} ± {format(sd, fmt)}" if with_sd and sd is not None else text


def _paper_gap(paper: dict[str, PaperRow], name: str) -> float | None:
    none, ideal, row = paper.get("none"), paper.get("ideal"), paper.get(name)
    if row is not None and row.gap_removed_pct is not None:
        return row.gap_removed_pct
    if not (none and ideal and row) or None in (none.energy_ws, ideal.energy_ws, row.energy_ws):
        return None
    assert none.energy_ws is not None and ideal.energy_ws is not None and row.energy_ws is not None
    if none.energy_ws == ideal.energy_ws:
        return None
    return 100.0 * (none.energy_ws - row.energy_ws) / (none.energy_ws - ideal.energy_ws)


def row_names(table: TableFile) -> list[str]:
    """The paper's rows in its order, our own policy's, then any extra rows in the order the file lists them."""
    first = [n for n in (*ROW_ORDER, table.own_policy) if n is not None and n in table.rows]
    return first + [n for n in table.rows if n not in first]


def table_view(table: TableFile) -> TableView:
    """Format every cell: energy to the watt-second, percentages to 0.1, mean ± sd over several seeds."""
    with_sd = len(table.seeds) > 1
    rows = []
    for name in row_names(table):
        row, paper = table.rows[name], table.paper.get(name, PaperRow())
        rows.append(
            (
                name,
                _cell(row.energy_to_complete_ws, row.energy_to_complete_ws_sd, ",.0f", with_sd),
                _cell(row.gap_removed_complete_pct, row.gap_removed_complete_pct_sd, ".0f", with_sd),
                _cell(row.delay_mean_s, None, ".1f", False),
                _cell(row.delay_p95_s, None, ".1f", False),
                _cell(row.energy_ws, row.energy_ws_sd, ",.0f", with_sd),
                _cell(paper.energy_ws, None, ",.0f", False),
                _cell(row.saved_pct, row.saved_pct_sd, ".1f", with_sd),
                _cell(paper.saved_pct, None, ".1f", False),
                _cell(row.gap_removed_pct, row.gap_removed_pct_sd, ".0f", with_sd),
                _cell(_paper_gap(table.paper, name), None, ".0f", False),
                _cell(row.unserved_cpu_pct, row.unserved_cpu_pct_sd, ".2f", with_sd),
                _cell(row.migrations, row.migrations_sd, ".1f" if with_sd else ".0f", with_sd),
            )
        )
    seeds = _seed_text(table.seeds)
    title = f"Table IV — {table.scenario} scenario" + (f" ({seeds})" if seeds else "")
    return TableView(title=title, header=HEADER, rows=tuple(rows), notes=tuple(table.notes))


def _seed_text(seeds: list[int]) -> str:
    if not seeds:
        return ""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"mean ± sd over {len(seeds)} seeds, {min(seeds)}–{max(seeds)}"


def to_rich(view: TableView) -> Table:
    """A rich Table for the terminal, ≤ 80 columns: the paper's value in grey under ours, never cut."""
    table = Table(
        title=escape(view.title),
        caption=escape("\n".join(view.notes)) or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    pairs = ((COMPLETE, None), (GAP_COMPLETE, None), (DELAY_P95, None), (ENERGY, PAPER_ENERGY), (GAP, PAPER_GAP))
    table.add_column("run", no_wrap=True)
    for name in RICH_HEADER:
        table.add_column(name, justify="right", overflow="fold")
    for row in view.rows:
        cells = [_with_paper(row[ours], row[paper] if paper else DASH) for ours, paper in pairs]
        table.add_row(escape(row[0]), *cells)
    if any(row[i] != DASH for row in view.rows for i in (PAPER_ENERGY, PAPER_SAVED, PAPER_GAP)):
        note = "[dim](in brackets: the paper's Table IV)[/]"
        table.caption = f"{table.caption}\n{note}" if table.caption else note
    return table


def _with_paper(ours: str, paper: str) -> str:
    if paper == DASH:
        return escape(ours)
    return f"{escape(ours)}\n[dim]({escape(paper)})[/]"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def without_empty_columns(view: TableView) -> TableView:
    """Drop the columns that are empty in every row (e.g. the paper's, for a scenario it has no table for)."""
    keep = [i for i in range(len(view.header)) if i == 0 or any(row[i] != DASH for row in view.rows)]
    return TableView(
        title=view.title,
        header=tuple(view.header[i] for i in keep),
        rows=tuple(tuple(row[i] for i in keep) for row in view.rows),
        notes=view.notes,
    )


def to_markdown(view: TableView) -> str:
    """A GitHub-flavoured Markdown table with its title and notes (all-empty columns left out)."""
    view = without_empty_columns(view)
    lines = [f"**{_md_escape(view.title)}**", ""]
    lines.append("| " + " | ".join(_md_escape(h) for h in view.header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(view.header) - 1)) + "|")
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in view.rows]
    lines += [""] + [f"- {_md_escape(note)}" for note in view.notes]
    return "\n".join(lines).rstrip() + "\n"


def to_html(view: TableView) -> str:
    """An HTML table (cells escaped, all-empty columns left out) with a caption and the notes below it."""
    view = without_empty_columns(view)
    esc = html.escape
    parts = [f'<table class="results"><caption>{esc(view.title)}</caption><thead><tr>']
    parts += [f"<th>{esc(h)}</th>" for h in view.header]
    parts.append("</tr></thead><tbody>")
    for row in view.rows:
        cells = [f'<th scope="row">{esc(row[0])}</th>'] + [f"<td>{esc(c)}</td>" for c in row[1:]]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if view.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in view.notes) + "</ul>")
    return "".join(parts)
