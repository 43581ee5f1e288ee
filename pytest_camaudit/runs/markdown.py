"""A Markdown summary of a run or a merge, for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment.

What it holds, in order: the verdict; the run's model, method and counts; the failed gates; the
gate, baseline and per-class tables; the failing cases, each with what failed and the measured
value against its threshold; the report's path. It is always under :data:`LIMIT` bytes (GitHub's
limit on a step summary and on a comment): tables longer than their share are cut with a count of
the rows left out, and the case list stops with a count of the cases left out. Cases arrive as an
iterable and are never held, so a merge streams them here.

Every user string (case names, node ids, messages, class names) is escaped: it cannot open a link,
an image, an HTML tag or a table cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..fileio import atomic_write
from ..records import CaseRecord, DiscoverySummary, RunSummary, Table, bound, make_gate_state

LIMIT = 64 * 1024
"""Bytes: the summary is always shorter."""

_TABLES_SHARE = 24 * 1024
"""Bytes all tables together may take; the case list gets the rest."""

_RESERVE = 2048
"""Bytes kept for the lines after the case list (the count of cases left out, the report's path)."""

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&])")


def escape(text: Any, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters, with Markdown and HTML specials escaped."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", s)


def _code(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split()).replace("`", "'")
    return f"`{s[: limit - 1] + '…' if len(s) > limit else s}`"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.3f}"
    return escape(value, 60)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def table_markdown(table: Table, budget: int) -> str:
    """A table as Markdown within ``budget`` bytes (rows cut with a count when it is longer)."""
    head = [f"#### {escape(table['title'])}", "", "| " + " | ".join(escape(c, 60) for c in table["columns"]) + " |",
            "|" + "---|" * len(table["columns"])]
    out, used = head, sum(_size(x) + 1 for x in head)
    rows = table.get("rows", [])
    for i, row in enumerate(rows):
        line = "| " + " | ".join(_num(v) for v in row) + " |"
        if used + _size(line) + 80 > budget:
            out.append(f"| … {len(rows) - i} more rows (see the report) |" + " |" * (len(table["columns"]) - 1))
            break
        out.append(line)
        used += _size(line) + 1
    return "\n".join(out) + "\n"


def _verdict(summary: RunSummary) -> str:
    gates = summary.get("gates") or make_gate_state()
    failed = summary.get("failed_tests", 0) or gates.get("failures")
    if failed:
        return "❌ **CAM audit: FAILED**"
    if gates.get("state") == "incomplete":
        return "⚠️ **CAM audit: incomplete** — the gates were not judged"
    if gates.get("state") == "deferred":
        return "⏸️ **CAM audit shard: tests passed** — the gates are deferred to the merge"
    return "✅ **CAM audit: passed**"


def _head(summary: RunSummary) -> list[str]:
    s = summary
    gates = s.get("gates") or make_gate_state()
    lines = [f"### {_verdict(s)}", "",
             f"model {_code(s.get('model'))} (weights {_code(str(s.get('identity') or '')[:12] or '—')}), method {_code(s.get('method'))}, "
             f"device {_code(s.get('device'))}, score threshold {_num(s.get('score_threshold'))}", "",
             f"**{s.get('tests', 0)}** tests ({s.get('failed_tests', 0)} failed) · **{s.get('audited_cases', 0)}** audited cases: "
             f"{s.get('failed_cases', 0)} failing, {s.get('error_cases', 0)} unusable/error, {s.get('passed_cases', 0)} passing", ""]
    if gates.get("state") in ("incomplete", "deferred"):
        lines += [f"Gates **{gates['state']}** ({gates.get('ran', 0)} of {gates.get('collected', 0)} cases): nothing judged.", ""]
    for failure in gates.get("failures") or []:
        lines.append(f"- ❌ gate: {escape(failure, 400)}")
    return [*lines, *([""] if gates.get("failures") else []), *_discovery(s.get("discovery") or {})]


def _discovery(d: DiscoverySummary) -> list[str]:
    """The discovery verdict: each flagged class and where its evidence lies, or that nothing was flagged."""
    if not d.get("enabled"):
        return []
    lines = [f"**Discovery:** {escape(str(d.get('line', '')).removeprefix('camaudit discovery: '), 300)}", ""]
    for c in d.get("classes") or []:
        if c["label"] in (d.get("flagged") or []):
            g = next(g for g in c["groups"] if g["status"] == "flagged")
            lines.append(f"- 🔎 {_code(c['label'])}: a group of {g['size']} of {c['objects']} objects loses {_num(g['loss'])} of its score "
                         f"when the region {escape(g['where'], 120)} is filled")
    return [*lines, ""] if d.get("flagged") else lines


def _measured(c: Any) -> str:
    parts = []
    for key, value in c.measured.items():
        limit = c.thresholds.get(key)
        parts.append(f"{escape(key, 40)} {_num(value)}" + (f" (needs {bound(c.kind, key)} {_num(limit)})" if limit is not None else ""))
    return ", ".join(parts) if parts else escape(c.message.splitlines()[0] if c.message else "", 200)


def case_markdown(case: CaseRecord) -> str:
    """One failing case: its name and test, then each failed check with measured value and threshold."""
    lines = [f"- **{escape(case.name, 120)}** {_code(case.nodeid)}"]
    if case.error is not None:
        lines.append(f"  - error: {escape(case.error.splitlines()[0] if case.error else '', 300)}")
    for c in case.failed_checks:
        about = f" ({escape(c.label, 60)})" if c.label else ""
        lines.append(f"  - {escape(c.kind, 40)}{about}: {_measured(c)}")
    if len(lines) == 1:
        note = next((n for n in case.notes if "failed outside" in n), "the test failed")
        lines.append(f"  - {escape(note, 300)}")
    return "\n".join(lines) + "\n"


def markdown_summary(summary: RunSummary, cases: Iterable[CaseRecord], report_path: str | None) -> str:
    """The whole summary (always under :data:`LIMIT` bytes); ``cases`` in report order, failing ones listed."""
    parts = ["\n".join(_head(summary)) + "\n"]
    tables = [t for t in (summary.get("tables") or []) if t.get("rows")]
    per_class = summary.get("per_class")
    if per_class and per_class.get("rows"):
        tables.append(per_class)
    for t in tables:
        parts.append(table_markdown(t, _TABLES_SHARE // max(1, len(tables))) + "\n")
    used = sum(_size(p) for p in parts)
    shown = left = 0
    listing: list[str] = []
    for case in cases:
        if not case.verdict.failing:
            continue
        text = case_markdown(case)
        if left or used + _size(text) > LIMIT - _RESERVE:
            left += 1
            continue
        listing.append(text)
        used += _size(text)
        shown += 1
    if shown or left:
        parts.append(f"#### Failing cases ({shown + left})\n\n" + "".join(listing))
        if left:
            parts.append(f"\n… and {left} more failing cases, left out to keep this summary under 64 KB: see the report.\n")
    parts.append(f"\nReport: {_code(report_path, 300)}\n" if report_path else "\nNo HTML report was written (--camaudit-report).\n")
    return "".join(parts)


def write_markdown(path: str | Path, summary: RunSummary, cases: Iterable[CaseRecord], report_path: str | None) -> Path:
    """Write :func:`markdown_summary` to ``path`` atomically."""
    return atomic_write(path, markdown_summary(summary, cases, report_path).encode("utf-8"))
