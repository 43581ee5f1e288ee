"""Render and atomically write the report from plain :class:`~pytest_camaudit.records.CaseRecord` data."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ..records import CaseRecord

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("pytest_camaudit.report", "templates"),
    autoescape=True,  # every user-controlled string (ids, names, messages) is escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def render_report(cases: Sequence[CaseRecord], summary: Mapping[str, Any]) -> str:
    """The report's HTML for ``cases`` (those to show) under the run ``summary``."""
    widths = [f.width for c in cases for f in c.figures] or [320]
    return _ENV.get_template("report.html.j2").render(cases=cases, summary=summary, fmt=_fmt, max_fig_width=max(widths))


def write_report(path: str | os.PathLike[str], cases: Sequence[CaseRecord], summary: Mapping[str, Any]) -> Path:
    """Write the report to ``path`` atomically (temporary file in the same folder, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    html = render_report(cases, summary)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
