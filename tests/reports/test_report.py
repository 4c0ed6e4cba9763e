"""build_report and `consolidator report`: every figure linked and embedded, tables in, bad folders named.

Inputs are hand-made run folders (report_fixtures.py), not simulator output.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import report_fixtures
from PIL import Image

from consolidator.domain.errors import UserError
from consolidator.reports import build_report


@pytest.fixture(scope="module")
def built(experiment_dir: Path) -> Path:
    return build_report(experiment_dir)


def test_writes_html_markdown_and_figures(built: Path, experiment_dir: Path) -> None:
    assert built == experiment_dir / "report.html"
    names = sorted(p.name for p in (experiment_dir / "figures").glob("*.png"))
    expected = [f"{s}-{k}.png" for s in ("simple", "complex") for k in ("cpu", "power", "active", "total")]
    assert sorted(expected + ["complex-seeds.png"]) == names  # energy per seed only with > 1 seed


def test_markdown_links_every_figure(built: Path, experiment_dir: Path) -> None:
    text = (experiment_dir / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    on_disk = sorted(p.relative_to(experiment_dir).as_posix() for p in (experiment_dir / "figures").glob("*.png"))
    assert sorted(links) == on_disk
    # every figure and every table (one per scenario) says how to read it
    assert text.count("*How to read this:*") == len(on_disk) + 2
    assert "Rows " not in text  # no sensitivity note without name@value rows


def test_html_embeds_every_figure_as_a_valid_png(built: Path, experiment_dir: Path) -> None:
    html = built.read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(list((experiment_dir / "figures").glob("*.png")))
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.format == "PNG" and image.size[0] >= 450
    assert 'src="figures/' not in html and "http" not in html.split("<body>")[1]  # self-contained


def test_tables_and_parameters_are_in_both_reports(built: Path, experiment_dir: Path) -> None:
    energy = report_fixtures.json.loads((experiment_dir / "complex" / "table.json").read_text())
    postcopy = energy["rows"]["postcopy"]
    cell = f"{postcopy['energy_ws']:,.0f} ± {postcopy['energy_ws_sd']:,.0f}"
    for text in (built.read_text(), (experiment_dir / "report.md").read_text()):
        assert cell in text
        assert "344,204" in text  # the paper's column
        assert "Table IV — complex scenario (mean ± sd over 3 seeds, 0–2)" in text
        assert "bandwidth_bytes_per_s" in text  # run parameters from summary.json


def test_without_table_json_the_table_comes_from_the_summaries(tmp_path: Path) -> None:
    out = report_fixtures.write_experiment(tmp_path / "out", "simple", (0, 1), duration_s=120)
    (out / "simple" / "table.json").unlink()
    text = build_report(out).read_text()
    assert "computed by the report from the runs&#39; summary.json" in text or "computed by the report" in text
    none = [
        report_fixtures.json.loads((out / "simple" / "none" / f"seed-{s}" / "summary.json").read_text())["energy_ws"]
        for s in (0, 1)
    ]
    assert f"{sum(none) / 2:,.0f}" in text


def test_names_from_run_folders_are_escaped(tmp_path: Path) -> None:
    out = report_fixtures.write_experiment(tmp_path / "out", "simple", (0,), duration_s=60)
    table = out / "simple" / "table.json"
    table.write_text(table.read_text().replace("hand-made fixture", "<script>alert(1)</script>"))
    html = build_report(out).read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda run: (run / "hosts.csv").unlink(), "hosts.csv: file is missing"),
        (lambda run: (run / "summary.json").write_text("{"), "summary.json: not valid JSON"),
        (lambda run: (run / "vms.csv").write_text("t_s,vm\n"), "vms.csv: missing column"),
        (lambda run: (run.parent.parent / "table.json").write_text("[]"), "table.json"),
    ],
    ids=["missing-csv", "bad-json", "bad-header", "bad-table"],
)
def test_bad_run_folder_raises_user_error_naming_the_file(tmp_path: Path, experiment_dir: Path, damage, named) -> None:
    out = tmp_path / "out"
    shutil.copytree(experiment_dir / "simple", out / "simple")
    damage(out / "simple" / "postcopy" / "seed-0")
    with pytest.raises(UserError, match=re.escape(named)):
        build_report(out)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consolidator.cli.main", "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_rebuilds_the_report_and_prints_the_tables(tmp_path: Path) -> None:
    out = report_fixtures.write_experiment(tmp_path / "out", "simple", (0,), duration_s=60)
    result = _cli(str(out))
    assert result.returncode == 0, result.stderr
    assert "Table IV — simple scenario (seed 0)" in result.stdout and "(344,204)" in result.stdout
    assert (out / "report.html").exists() and (out / "report.md").exists()


@pytest.mark.parametrize("case", ["missing-dir", "empty-dir", "broken-run"])
def test_cli_bad_folder_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    if case != "missing-dir":
        out.mkdir()
    if case == "broken-run":
        report_fixtures.write_run(out / "simple" / "postcopy" / "seed-0", "simple", "postcopy", 0, 30)
        (out / "simple" / "postcopy" / "seed-0" / "migrations.csv").write_bytes(b"\x00\xff\xfe binary")
    result = _cli(str(out))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and str(out) in result.stderr


def test_a_single_run_folder_gets_a_report_too(tmp_path: Path) -> None:
    """`consolidator simulate --out DIR` writes one run folder; `consolidator report DIR` draws it."""
    run = report_fixtures.write_run(tmp_path / "run", "simple", "precopy", 4, duration_s=120)
    html = build_report(run).read_text()
    assert "simple scenario" in html and "seed 4" in html
    assert sorted(p.name for p in (run / "figures").glob("*.png")) == [
        "simple-active.png",
        "simple-cpu.png",
        "simple-power.png",
        "simple-total.png",
    ]
