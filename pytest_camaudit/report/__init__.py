"""The HTML audit report: `report.html` plus its side files in `report_files/` (CSS, thumbnails, full-size figures; no scripts)."""

from .html import render_report, write_report

__all__ = ["render_report", "write_report"]
