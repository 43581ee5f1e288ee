"""Run-level bookkeeping on the controller: collect case records from test reports, summarise.

Records arrive as plain data on test reports (``report.camaudit``), so the same code serves a
plain run and a pytest-xdist run, where reports travel from the workers to the controller.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..records import CaseRecord
from .options import Settings

if TYPE_CHECKING:
    from ..report.store import FigureStore


@dataclass
class RunCollector:
    """Everything the report and the terminal summary need, gathered from test reports."""

    settings: Settings
    started: float = field(default_factory=time.time)
    cases: list[CaseRecord] = field(default_factory=list)
    run_facts: dict[str, Any] = field(default_factory=dict)
    tests: int = 0
    failed_tests: int = 0
    report_path: str | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    """Extra summary tables for the report and terminal: ``{"title", "columns", "rows", "note"}``."""
    problems: list[str] = field(default_factory=list)
    """Outputs that could not be written (report, JSON), for the terminal summary."""
    store: FigureStore | None = None
    """Where each finished case's figures are written as its report arrives (the report's side folder)."""

    def add_report(self, report: Any) -> None:
        """Take what a ``pytest.TestReport`` carries (called from ``pytest_runtest_logreport``)."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.tests += 1
            self.failed_tests += int(report.failed)
        for d in getattr(report, "camaudit", None) or []:
            record = CaseRecord.from_dict(d)
            if self.store is not None and record.figures:
                record.figures = [self.store.put(record.name, f) for f in record.figures]
                d["figures"] = [asdict(f) for f in record.figures]  # the report object lives on in pytest's stats: no bytes
            self.cases.append(record)
        facts = getattr(report, "camaudit_run", None)
        if facts and not self.run_facts:
            self.run_facts = dict(facts)

    @property
    def failing(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.outcome == "failed" and c.error is None]

    @property
    def errors(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.error is not None or c.outcome == "error"]

    @property
    def passing(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.outcome == "passed" and c.error is None]

    def shown(self) -> list[CaseRecord]:
        """Cases the report shows: failing and broken ones, plus passing ones with report-all."""
        keep = [c for c in self.cases if c.outcome != "passed" or c.error is not None or self.settings.report_all]
        order = {"error": 0, "failed": 1, "skipped": 2, "passed": 3}
        return sorted(keep, key=lambda c: (order.get(c.outcome, 4), c.nodeid, c.name))

    def per_class(self) -> dict[str, Any]:
        """The per-class summary table over every audited case (shown in the report or not).

        A case counts for each class it is about (its expected objects and checks); a case about
        none (an unreadable image, a model error) counts under ``(no class)``. Check cells read
        ``failed / run``.
        """
        kinds = sorted({c.kind for case in self.cases for c in case.checks})
        rows: dict[str, dict[str, Any]] = {}
        for case in self.cases:
            outcome = "error" if case.error is not None or case.outcome == "error" else case.outcome
            for label in case.labels or ["(no class)"]:
                row = rows.setdefault(label, {"cases": 0, "failed": 0, "error": 0, "passed": 0, "kinds": {}, "mass": []})
                row["cases"] += 1
                row[outcome if outcome in ("failed", "error", "passed") else "error"] += 1
                for c in case.checks:
                    if c.label not in (None, label):
                        continue
                    ran, failed = row["kinds"].get(c.kind, (0, 0))
                    row["kinds"][c.kind] = (ran + 1, failed + int(not c.passed))
                    mass = c.measured.get("mass")
                    if c.kind == "cam_mass" and isinstance(mass, (int, float)):
                        row["mass"].append(float(mass))
        table_rows = []
        for label in sorted(rows):
            r = rows[label]
            cells: list[Any] = [label, r["cases"], r["failed"], r["error"], r["passed"]]
            for k in kinds:
                ran, failed = r["kinds"].get(k, (0, 0))
                cells.append(f"{failed} / {ran}" if ran else "—")
            cells.append(sum(r["mass"]) / len(r["mass"]) if r["mass"] else None)
            table_rows.append(cells)
        return {
            "title": "Per class",
            "columns": ["class", "cases", "failing", "unusable/error", "passing", *(f"{k} failed / run" for k in kinds), "mean CAM mass"],
            "rows": table_rows,
            "note": "A case counts once for each class it expects or checks; CAM mass is the mean over its cam_mass checks.",
        }

    def summary(self, exitstatus: Any) -> dict[str, Any]:
        from .. import __version__

        facts = self.run_facts
        return {
            "model": facts.get("model", self.settings.model),
            "identity": facts.get("identity", ""),
            "method": facts.get("method", self.settings.method),
            "device": facts.get("device", self.settings.device),
            "score_threshold": self.settings.score_threshold,
            "started": datetime.fromtimestamp(self.started, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "duration": time.time() - self.started,
            "exitstatus": str(getattr(exitstatus, "name", exitstatus)),
            "version": __version__,
            "audited_cases": len(self.cases),
            "failed_cases": len(self.failing),
            "error_cases": len(self.errors),
            "passed_cases": len(self.passing),
            "tests": self.tests,
            "failed_tests": self.failed_tests,
            "tables": list(self.tables),
            "per_class": self.per_class(),
        }
