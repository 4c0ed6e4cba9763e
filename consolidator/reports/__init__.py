"""Reports: read stored runs, draw figures, write tables and HTML/Markdown reports."""
