"""The HTML audit report: one self-contained file (inline CSS, embedded PNGs, no scripts)."""

from .html import render_report, write_report

__all__ = ["render_report", "write_report"]
