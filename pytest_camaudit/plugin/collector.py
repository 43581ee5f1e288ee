"""Run-level bookkeeping on the controller: collect case records and test results from reports, summarise.

Records arrive as plain data on test reports (``report.camaudit``), object rows as
``report.camaudit_objects``, so the same code serves a plain run and a pytest-xdist run, where
reports travel from the workers to the controller. Totals and tables are computed over the cases
in ``(nodeid, name)`` order and the tests in node-id order, the order of the run file, so a merge of
shards (:mod:`pytest_camaudit.runs.merge`) computes the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from ..records import (
    CaseRecord,
    DiscoverySummary,
    FinishedTest,
    GateState,
    ObjectRow,
    RunFacts,
    RunSummary,
    Selection,
    Status,
    Table,
    make_gate_state,
    report_status,
)
from ..runs.layout import environment
from ..runs.tables import RunTotals
from .options import Settings

if TYPE_CHECKING:
    from ..report.store import FigureStore


def utc(seconds: float) -> str:
    """A timestamp as the report and the run file show it."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def exit_name(exitstatus: Any) -> str:
    """``OK``, ``TESTS_FAILED``, ``INTERRUPTED``… for a pytest exit status (an ``ExitCode`` or its number)."""
    import pytest

    try:
        return pytest.ExitCode(exitstatus).name
    except ValueError:
        return str(getattr(exitstatus, "name", exitstatus))


@dataclass
class RunCollector:
    """Everything the report, the run file and the terminal summary need, gathered from test reports."""

    settings: Settings
    started: float = field(default_factory=time.time)
    cases: list[CaseRecord] = field(default_factory=list)
    run_facts: RunFacts = field(default_factory=RunFacts)
    """The run's detector, identity, method and device, from the first audit test's report."""
    tests: int = 0
    failed_tests: int = 0
    report_path: str | None = None
    tables: list[Table] = field(default_factory=list)
    """Extra summary tables for the report and terminal: ``{"title", "columns", "rows", "note"}``."""
    problems: list[str] = field(default_factory=list)
    """Outputs that could not be written (report, JSON), for the terminal summary."""
    store: FigureStore | None = None
    """Where each finished case's figures are written as its report arrives (the report's or the run file's folder)."""
    test_entries: list[FinishedTest] = field(default_factory=list)
    """Per finished test: ``{"nodeid", "outcome", "audit", "objects"}`` (the run file's ``tests``)."""
    collected: int | None = None
    """How many audit tests were selected to run (None: not known)."""
    selection: Selection = field(default_factory=Selection)
    """``{"args", "keyword", "markexpr"}`` and ``shard`` (pytest-split's ``--splits``/``--group``) of this run."""
    gates: GateState = field(default_factory=make_gate_state)
    """The gates' state, set by :mod:`.gates` at the end of the session."""
    finished: float | None = None
    discovery: DiscoverySummary | None = None
    """Discovery's verdict (:mod:`pytest_camaudit.discovery.summary`), set by :mod:`.discovery` at the end of the session."""

    def add_report(self, report: Any) -> None:
        """Take what a ``pytest.TestReport`` carries (called from ``pytest_runtest_logreport``)."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.tests += 1
            self.failed_tests += int(report.failed)
            self.test_entries.append({"nodeid": report.nodeid, "outcome": report_status(report).value,
                                      "audit": "camaudit" in getattr(report, "keywords", {}),
                                      "objects": list(getattr(report, "camaudit_objects", None) or [])})
        for d in getattr(report, "camaudit", None) or []:
            record = CaseRecord.from_dict(d)
            if self.store is not None and record.figures:
                record.figures = [self.store.put(record.name, f) for f in record.figures]
                d["figures"] = [asdict(f) for f in record.figures]  # the report object lives on in pytest's stats: no bytes
            self.cases.append(record)
        facts = getattr(report, "camaudit_run", None)
        if facts and not self.run_facts:
            self.run_facts = RunFacts(model=str(facts["model"]), identity=str(facts["identity"]), method=str(facts["method"]),
                                      device=str(facts["device"]))

    def sorted_cases(self) -> list[CaseRecord]:
        return sorted(self.cases, key=lambda c: (c.nodeid, c.name))

    def sorted_tests(self) -> list[FinishedTest]:
        return sorted(self.test_entries, key=lambda t: str(t["nodeid"]))

    def rows(self) -> list[ObjectRow]:
        """Every object row (the gate inputs), in node-id order."""
        return [row for t in self.sorted_tests() for row in t["objects"]]

    @property
    def ran(self) -> int:
        """How many audit tests finished (each counted once)."""
        return len({t["nodeid"] for t in self.test_entries if t["audit"]})

    @property
    def failing(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.status is Status.FAILED]

    @property
    def errors(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.status is Status.ERROR]

    @property
    def passing(self) -> list[CaseRecord]:
        return [c for c in self.cases if c.status.passing]

    def shown(self) -> list[CaseRecord]:
        """Cases the report shows: failing and broken ones, plus passing ones with report-all."""
        keep = [c for c in self.cases if not c.status.passing or self.settings.report_all]
        return sorted(keep, key=lambda c: (c.status.order, c.nodeid, c.name))

    def totals(self) -> RunTotals:
        totals = RunTotals()
        for case in self.sorted_cases():
            totals.add_case(case)
        return totals

    def per_class(self) -> Table:
        """The per-class summary table over every audited case (:class:`~pytest_camaudit.runs.tables.PerClass`)."""
        return self.totals().per_class.table()

    def summary(self, exitstatus: Any) -> RunSummary:
        """The run's facts, counts and tables (the report's header, the run file's header, the terminal)."""
        from .. import __version__

        facts = self.run_facts
        totals = self.totals()
        finished = self.finished if self.finished is not None else time.time()
        return {
            "model": facts.get("model", self.settings.model),
            "identity": facts.get("identity", ""),
            "method": facts.get("method", self.settings.method),
            "device": facts.get("device", self.settings.device),
            "score_threshold": self.settings.score_threshold,
            "started": utc(self.started),
            "finished": utc(finished),
            "duration": finished - self.started,
            "exitstatus": exit_name(exitstatus),
            "version": __version__,
            **environment(),
            "settings": self.settings.verdict_settings(),
            "report_all": self.settings.report_all,
            "selection": cast(Selection, {k: v for k, v in self.selection.items() if k != "shard"}),
            "shard": self.selection.get("shard"),
            **totals.counts(),
            "tests": self.tests,
            "failed_tests": self.failed_tests,
            "gates": make_gate_state(**self.gates),
            "tables": list(self.tables),
            "per_class": totals.per_class.table(),
            "discovery": self.discovery,
        }
