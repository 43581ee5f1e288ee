"""A run's totals and per-class table, accumulated case by case, and the terminal lines they print as.

The same accumulators serve a pytest run (over its cases in memory) and a merge (over the shards'
cases as they stream past), in the same ``(nodeid, name)`` order, so a merged run's numbers equal
a single run's to the last bit. :func:`terminal_lines` is what both print under ``camaudit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import CaseRecord, FinishedTest, RunCounts, RunSummary, Status, Table

PER_CLASS_NOTE = "A case counts once for each class it expects or checks; CAM mass is the mean over its cam_mass checks."


@dataclass
class _ClassRow:
    cases: int = 0
    failed: int = 0
    error: int = 0
    passed: int = 0
    kinds: dict[str, list[int]] = field(default_factory=dict)  # kind -> [ran, failed]
    mass_sum: float = 0.0
    mass_n: int = 0


class PerClass:
    """The per-class summary table over every audited case (shown in the report or not).

    A case counts for each class it is about (its expected objects and checks); a case about none
    (an unreadable image, a model error) counts under ``(no class)``. Check cells read ``failed / run``.
    """

    def __init__(self) -> None:
        self.rows: dict[str, _ClassRow] = {}
        self.kinds: set[str] = set()

    def add(self, case: CaseRecord) -> None:
        status = case.status
        self.kinds.update(c.kind for c in case.checks)
        for label in case.labels or ["(no class)"]:
            row = self.rows.setdefault(label, _ClassRow())
            row.cases += 1
            if status is Status.FAILED:
                row.failed += 1
            elif status.passing:
                row.passed += 1
            else:
                row.error += 1
            for c in case.checks:
                if c.label not in (None, label):
                    continue
                counts = row.kinds.setdefault(c.kind, [0, 0])
                counts[0] += 1
                counts[1] += int(not c.passed)
                mass = c.measured.get("mass")
                if c.kind == "cam_mass" and isinstance(mass, (int, float)):
                    row.mass_sum += float(mass)
                    row.mass_n += 1

    def table(self) -> Table:
        kinds = sorted(self.kinds)
        rows = []
        for label in sorted(self.rows):
            r = self.rows[label]
            cells: list[Any] = [label, r.cases, r.failed, r.error, r.passed]
            for k in kinds:
                ran, failed = r.kinds.get(k, (0, 0))
                cells.append(f"{failed} / {ran}" if ran else "—")
            cells.append(r.mass_sum / r.mass_n if r.mass_n else None)
            rows.append(cells)
        return {
            "title": "Per class",
            "columns": ["class", "cases", "failing", "unusable/error", "passing", *(f"{k} failed / run" for k in kinds), "mean CAM mass"],
            "rows": rows,
            "note": PER_CLASS_NOTE,
        }


@dataclass
class RunTotals:
    """Counts of a run's cases and tests, and its per-class table."""

    audited_cases: int = 0
    failed_cases: int = 0
    error_cases: int = 0
    passed_cases: int = 0
    tests: int = 0
    failed_tests: int = 0
    audit_tests: int = 0
    """Audit tests (each node id once: tests arrive in node-id order)."""
    per_class: PerClass = field(default_factory=PerClass)
    _last_audit: str | None = None

    def add_case(self, case: CaseRecord) -> None:
        self.audited_cases += 1
        status = case.status
        self.error_cases += int(status is Status.ERROR)
        self.failed_cases += int(status is Status.FAILED)
        self.passed_cases += int(status.passing)
        self.per_class.add(case)

    def add_test(self, test: FinishedTest) -> None:
        self.tests += 1
        self.failed_tests += int(Status.of(test.get("outcome")).failing)
        if test.get("audit") and test.get("nodeid") != self._last_audit:
            self.audit_tests += 1
            self._last_audit = test.get("nodeid")

    def counts(self) -> RunCounts:
        return {"audited_cases": self.audited_cases, "failed_cases": self.failed_cases, "error_cases": self.error_cases,
                "passed_cases": self.passed_cases, "tests": self.tests, "failed_tests": self.failed_tests}


def _cell(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def table_lines(table: Table) -> list[str]:
    """A table as aligned terminal lines: its title, then the header and rows indented by two spaces."""
    rows = [[str(c) for c in table["columns"]]] + [[_cell(v) for v in row] for row in table["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [table["title"], *("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)]


def terminal_lines(summary: RunSummary, problems: list[str], report_path: str | None) -> list[tuple[str, dict[str, bool]]]:
    """What a run or a merge prints under its ``camaudit`` separator: ``(text, markup)`` pairs."""
    s = summary
    out: list[tuple[str, dict[str, bool]]] = [(f"ERROR: {p}", {"red": True, "bold": True}) for p in problems]
    out.append((f"{s['audited_cases']} audited cases: {s['failed_cases']} failing, {s['error_cases']} unusable/error, "
                f"{s['passed_cases']} passing (model {s['model']}, method {s['method']}, device {s['device']})", {}))
    for table in s.get("tables", []):
        out.extend((line, {}) for line in table_lines(table))
    discovery = s.get("discovery") or {}
    if discovery.get("line"):
        out.append((discovery["line"], {"red": True, "bold": True} if discovery.get("flagged") else
                    {"yellow": True} if discovery.get("pending") else {"green": True}))
    if report_path:
        out.append((f"report: {report_path}", {}))
    return out


def gate_failure_lines(failures: list[str]) -> list[str]:
    """The lines under the ``camaudit: N dataset gate(s) failed`` separator."""
    return [f"FAILED gate: {f}" for f in failures]
