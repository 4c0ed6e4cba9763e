"""Table IV rendering: formatting of mean ± sd, the paper's columns, tolerance of missing keys, escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from consolidator.domain.errors import UserError
from consolidator.reports.table import (
    COMPLETE,
    DELAY_P95,
    ENERGY,
    GAP,
    GAP_COMPLETE,
    PAPER_ENERGY,
    PAPER_GAP,
    PAPER_SAVED,
    SAVED,
    TableFile,
    load_table,
    table_view,
    to_html,
    to_markdown,
    to_rich,
)

PAPER = {
    "none": {"energy_ws": 390175, "saved_pct": 0.0},
    "ideal": {"energy_ws": 294033, "saved_pct": 24.6},
    "postcopy": {"energy_ws": 344204, "saved_pct": 11.8},
    "precopy": {"energy_ws": 369877, "saved_pct": 5.2},
}


def _table(seeds: list[int], **rows: dict[str, float]) -> TableFile:
    return TableFile.model_validate({"scenario": "complex", "seeds": seeds, "rows": rows, "paper": PAPER})


def _cells(view_rows: tuple[tuple[str, ...], ...]) -> dict[str, tuple[str, ...]]:
    return {row[0]: row for row in view_rows}


@pytest.mark.parametrize(
    ("seeds", "row", "expected"),
    [
        # several seeds: mean ± sd, energy to the Ws with thousands separators, percentages to 0.1
        (
            [1, 2, 3],
            {
                "energy_ws": 344204.4,
                "energy_ws_sd": 1234.5,
                "saved_pct": 11.83,
                "saved_pct_sd": 0.31,
                "gap_removed_pct": 47.8,
                "gap_removed_pct_sd": 3.2,
                "unserved_cpu_pct": 0.125,
                "migrations": 12.25,
                "migrations_sd": 2.0,
            },
            ("344,204 ± 1,234", "11.8 ± 0.3", "48 ± 3", "0.12", "12.2 ± 2.0"),
        ),
        # one seed: no ± even if an sd is given; migrations as a whole number
        (
            [7],
            {
                "energy_ws": 344204.0,
                "energy_ws_sd": 0.0,
                "saved_pct": 11.8,
                "gap_removed_pct": 48.0,
                "unserved_cpu_pct": 0.0,
                "migrations": 12,
            },
            ("344,204", "11.8", "48", "0.00", "12"),
        ),
        # optional keys missing: an em dash, never a made-up number
        ([1, 2], {"energy_ws": 1000.0}, ("1,000", "—", "—", "—", "—")),
    ],
    ids=["mean-sd", "one-seed", "missing-keys"],
)
def test_cells(seeds: list[int], row: dict[str, float], expected: tuple[str, ...]) -> None:
    cells = _cells(table_view(_table(seeds, postcopy=row)).rows)["postcopy"]
    assert (cells[ENERGY], cells[SAVED], cells[GAP], cells[-2], cells[-1]) == expected


def test_equal_work_cells_come_first() -> None:
    row = {"energy_ws": 399604.5, "energy_to_complete_ws": 401898.1, "energy_to_complete_ws_sd": 5100.0,
           "gap_removed_complete_pct": -9.5, "gap_removed_complete_pct_sd": 20.0, "delay_mean_s": 7.42,
           "delay_p95_s": 23.0}
    cells = _cells(table_view(_table([0, 1], postcopy=row)).rows)["postcopy"]
    assert cells[COMPLETE] == "401,898 ± 5,100" and cells[GAP_COMPLETE] == "-10 ± 20"
    assert cells[DELAY_P95] == "23.0" and cells[DELAY_P95 - 1] == "7.4"
    assert table_view(_table([0], postcopy=row)).header[COMPLETE] == "energy to complete (Ws)"


def test_paper_columns_and_derived_gap() -> None:
    view = table_view(
        _table(
            [0],
            none={"energy_ws": 1.0},
            ideal={"energy_ws": 1.0},
            postcopy={"energy_ws": 1.0},
            precopy={"energy_ws": 1.0},
        )
    )
    cells = _cells(view.rows)
    assert cells["postcopy"][PAPER_ENERGY] == "344,204" and cells["postcopy"][PAPER_SAVED] == "11.8"
    # (390175 - 344204) / (390175 - 294033) = 47.8 %, (390175 - 369877) / 96142 = 21.1 %:
    # the paper's 48 % and 21 %
    assert cells["postcopy"][PAPER_GAP] == "48" and cells["precopy"][PAPER_GAP] == "21"
    assert cells["ideal"][PAPER_GAP] == "100" and cells["none"][PAPER_GAP] == "0"


def test_rows_in_paper_order_then_extras_in_file_order() -> None:
    rows = {name: {"energy_ws": 1.0} for name in ("precopy", "hybrid", "postcopy", "ideal@1.5", "none", "ideal")}
    view = table_view(_table([0], **rows))
    assert [r[0] for r in view.rows] == ["none", "ideal", "postcopy", "precopy", "hybrid", "ideal@1.5"]
    assert _cells(view.rows)["hybrid"][PAPER_ENERGY] == "—"  # no paper value for an extra row


def test_own_policy_row_follows_the_papers_rows() -> None:
    rows = {name: {"energy_ws": 1.0} for name in ("hybrid", "aware", "none", "postcopy")}
    table = TableFile.model_validate({"scenario": "complex", "seeds": [0], "rows": rows, "own_policy": "aware"})
    assert [r[0] for r in table_view(table).rows] == ["none", "postcopy", "aware", "hybrid"]


def test_title_says_how_many_seeds() -> None:
    assert table_view(_table(list(range(20)), none={"energy_ws": 1.0})).title == (
        "Table IV — complex scenario (mean ± sd over 20 seeds, 0–19)"
    )
    assert table_view(_table([3], none={"energy_ws": 1.0})).title == "Table IV — complex scenario (seed 3)"


def test_markdown_is_a_pipe_table() -> None:
    full = {
        "energy_ws": 390000.0,
        "energy_ws_sd": 10.0,
        "saved_pct": 0.0,
        "gap_removed_pct": 0.0,
        "unserved_cpu_pct": 0.0,
        "migrations": 0,
    }
    text = to_markdown(table_view(_table([0, 1], none=full)))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| run"))
    separator = lines[lines.index(header) + 1]
    assert header.count("|") == separator.count("|") == 10
    assert "| none | 390,000 ± 10 | 390,175 |" in text


def test_columns_empty_in_every_row_are_left_out_of_markdown_and_html() -> None:
    table = TableFile.model_validate(
        {
            "scenario": "simple",
            "seeds": [0],
            "rows": {"postcopy": {"energy_ws": 48377}, "precopy": {"energy_ws": 50793}},
        }
    )
    text = to_markdown(table_view(table))
    assert "| run | window energy (Ws) |" in text and "saved" not in text and "| —" not in text
    html = to_html(table_view(table))
    assert html.count("<th>") == 2 and "<td>—</td>" not in html


def test_html_escapes_names_from_the_file() -> None:
    table = TableFile.model_validate(
        {"scenario": "<b>x</b>", "rows": {"<script>": {"energy_ws": 1}}, "notes": ["a & b"]}
    )
    html = to_html(table_view(table))
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &amp; b" in html
    assert html.count("<tr>") == 2  # header + one row


def test_rich_fits_80_columns_without_cutting_numbers() -> None:
    row = {
        "energy_ws": 344204.0,
        "energy_ws_sd": 12345.0,
        "saved_pct": 11.8,
        "saved_pct_sd": 1.1,
        "gap_removed_pct": 47.8,
        "gap_removed_pct_sd": 5.0,
        "unserved_cpu_pct": 0.12,
        "unserved_cpu_pct_sd": 0.05,
        "migrations": 123.4,
        "migrations_sd": 10.2,
        "energy_to_complete_ws": 402204.0,
        "energy_to_complete_ws_sd": 12345.0,
        "gap_removed_complete_pct": -109.8,
        "gap_removed_complete_pct_sd": 55.0,
        "delay_p95_s": 123.4,
    }
    console = Console(width=80, record=True, color_system=None)
    console.print(to_rich(table_view(_table(list(range(20)), postcopy=row, precopy=row))))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for value in ("402,204 ± 12,345", "-110 ± 55", "123.4", "344,204 ± 12,345", "48 ± 5", "(344,204)", "(48)"):
        assert value in text, value


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"scenario": "s"}', "rows: Field required"),
        (
            '{"scenario": "s", "rows": {"none": {"energy_ws": "lots"}}}',
            "rows.none.energy_ws: Input should be",
        ),
        ("[1, 2]", "Input should be a valid dictionary"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_table_json_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(UserError, match=f"table.json: {message}"):
        load_table(path)


def test_extra_keys_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"scenario": "s", "rows": {"none": {"energy_ws": 5, "overload_s": 3}}, "capacity": 1.0}))
    table = load_table(path)
    assert table.rows["none"].model_extra == {"overload_s": 3}


def test_paper_gap_given_in_the_file_wins_over_the_derived_one() -> None:
    paper = {**PAPER, "postcopy": {"energy_ws": 344204, "saved_pct": 11.8, "gap_removed_pct": 50.0}}
    table = TableFile.model_validate({"scenario": "c", "rows": {"postcopy": {"energy_ws": 1}}, "paper": paper})
    assert _cells(table_view(table).rows)["postcopy"][PAPER_GAP] == "50"


def test_table_reading_explains_sensitivity_rows_only_when_present() -> None:
    from consolidator.reports.content import table_reading

    plain = _table([0], none={"energy_ws": 1.0}, ideal={"energy_ws": 1.0})
    assert "Energy to complete" in table_reading(plain) and "@" not in table_reading(plain)
    extra = _table([0], ideal={"energy_ws": 1.0}, **{"ideal@1.5": {"energy_ws": 1.0}})
    assert "Rows ideal@1.5 are sensitivity readings" in table_reading(extra)
    legacy = _table([0], **{"precopy-lost-cpu": {"energy_ws": 1.0}})
    assert "Rows precopy-lost-cpu use the legacy accounting" in table_reading(legacy)
