"""Reports: read stored runs, draw figures, write tables and HTML/Markdown reports."""

from consolidator.reports.report import build_report

__all__ = ["build_report"]
