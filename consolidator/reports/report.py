"""``build_report(out_dir)``: OUT/report.md and a self-contained OUT/report.html from stored runs.

Figures go to OUT/figures/; the Markdown links them relatively, the HTML embeds them as data URIs so
the one file can be mailed or archived. The HTML is rendered by Jinja2 with autoescaping on: names
from run folders never become markup.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from consolidator.reports.content import Section, build_section
from consolidator.reports.layout import find_experiments
from consolidator.reports.table import to_html, to_markdown

log = logging.getLogger(__name__)

INTRO = (
    "Energy of a cluster under the paper's consolidation heuristic with postcopy and with precopy live "
    "migration, against two bounds: no consolidation (one VM per Server node) and an ideal First-Fit "
    "with instant migrations. Figures and the table are numbered as in Hirofuchi et al. 2011 (Fig. 6–9, "
    "Table IV). Every number comes from the run folders next to this file; the paper's numbers are "
    "shown beside ours, never mixed in."
)
TIMELINE_NOTE = (
    "The paper's times are from its Section IV-B, which gives them approximately: migration from 85 s "
    'to ≈ 100 s (postcopy) or ≈ 160 s (precopy); PM1 asleep ≈ 20 s with precopy, "about 25 % of '
    'postcopy" (hence ≈ 80 s). Durations and the precopy suspend time are derived from those.'
)

HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Consolidator report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1720px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } .meta { color: #666; margin-top: 0; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; white-space: normal; }
caption { font-weight: 600; text-align: left; padding: .3rem 0; white-space: nowrap; }
table.results tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: .3rem; } .read { color: #444; max-width: 80ch; }
ul.notes { color: #555; font-size: .92rem; } details { margin: .8rem 0; } summary { cursor: pointer; }
nav a { margin-right: 1rem; } p { max-width: 110ch; }
</style></head>
<body>
{% macro grid(rows, caption) %}<table>{% if caption %}<caption>{{ caption }}</caption>{% endif %}
<thead><tr>{% for h in rows[0] %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows[1:] %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% endmacro %}
<h1>Consolidator report</h1>
<p class="meta">Built {{ built }} from <code>{{ out_dir }}</code></p>
<p>{{ intro }}</p>
<nav>{% for s in sections %}<a href="#{{ s.scenario }}">{{ s.scenario }} scenario</a>{% endfor %}</nav>
{% for s in sections %}
<section id="{{ s.scenario }}">
<h2>{{ s.scenario }} scenario</h2>
<p>{{ s.cluster }}</p>
{% if s.table %}{{ table_html[s.scenario] | safe }}<p class="meta">Source: {{ s.table_source }}</p>
<p class="read"><b>How to read this:</b> {{ s.table_reading }}</p>{% endif %}
{% if s.timeline %}{{ grid(s.timeline, "Timeline beside the paper's (seed %s)" % s.figure_seed) }}
<p class="meta">{{ timeline_note }}</p>{% endif %}
{% for f in s.figures %}
<figure id="{{ s.scenario }}-{{ f.key }}">
<figcaption>{{ f.title }}</figcaption>
<img src="{{ images[f.path] }}" alt="{{ f.title }}">
<p class="read"><b>How to read this:</b> {{ f.how_to_read }}</p>
</figure>
{% endfor %}
{% if s.run_rows|length > 1 %}{{ grid(s.run_rows, "Runs drawn above (seed %s)" % s.figure_seed) }}{% endif %}
{% if s.migrations|length > 1 %}
<details{% if s.migrations|length <= 12 %} open{% endif %}><summary>Migrations of the runs drawn above
({{ s.migrations|length - 1 }})</summary>{{ grid(s.migrations, "") }}</details>
{% endif %}
{% if s.params %}
<details><summary>Run parameters (seed {{ s.figure_seed }})</summary>{{ grid(s.params, "") }}</details>
{% endif %}
</section>
{% endfor %}
</body></html>
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _md_table(rows: tuple[tuple[str, ...], ...]) -> list[str]:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(rows[0]), "|" + "|".join([":---"] + ["---:"] * (len(rows[0]) - 1)) + "|"] + [line(r) for r in rows[1:]]


def render_markdown(sections: list[Section], out_dir: Path, built: str) -> str:
    """The report as Markdown; figures linked relative to OUT."""
    lines = ["# Consolidator report", "", f"Built {built} from `{out_dir}`.", "", INTRO, ""]
    for s in sections:
        lines += [f"## {s.scenario} scenario", "", s.cluster, ""]
        if s.table is not None:
            lines += [to_markdown(s.table), f"Source: {s.table_source}", ""]
            lines += [f"*How to read this:* {s.table_reading}", ""]
        if s.timeline:
            lines += [f"**Timeline beside the paper's (seed {s.figure_seed})**", ""] + _md_table(s.timeline)
            lines += ["", TIMELINE_NOTE, ""]
        for f in s.figures:
            rel = f.path.relative_to(out_dir).as_posix()
            lines += [
                f"### {f.title}",
                "",
                f"![{f.title}]({rel})",
                "",
                f"*How to read this:* {f.how_to_read}",
                "",
            ]
        if len(s.run_rows) > 1:
            lines += [f"**Runs drawn above (seed {s.figure_seed})**", ""] + _md_table(s.run_rows) + [""]
        if len(s.migrations) > 1:
            lines += [
                f"<details><summary>Migrations of the runs drawn above ({len(s.migrations) - 1})</summary>",
                "",
            ]
            lines += _md_table(s.migrations) + ["", "</details>", ""]
        if s.params:
            lines += [f"<details><summary>Run parameters (seed {s.figure_seed})</summary>", ""]
            lines += _md_table(s.params) + ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_html(sections: list[Section], out_dir: Path, built: str) -> str:
    """The report as one self-contained HTML page (figures embedded)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    images = {f.path: _data_uri(f.path) for s in sections for f in s.figures}
    tables = {s.scenario: to_html(s.table) for s in sections if s.table is not None}
    return env.from_string(HTML_TEMPLATE).render(
        sections=sections,
        images=images,
        table_html=tables,
        out_dir=str(out_dir),
        built=built,
        intro=INTRO,
        timeline_note=TIMELINE_NOTE,
    )


def build_report(out_dir: Path) -> Path:
    """Draw every figure into OUT/figures, write OUT/report.md and OUT/report.html; return the HTML path.

    A missing or malformed run folder or table raises UserError naming the file.
    """
    out_dir = Path(out_dir)
    experiments = find_experiments(out_dir)
    fig_dir = out_dir / "figures"
    sections = [build_section(e, fig_dir) for e in experiments]
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (out_dir / "report.md").write_text(render_markdown(sections, out_dir, built), encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(sections, out_dir, built), encoding="utf-8")
    log.info("report written: %s", html_path)
    return html_path
