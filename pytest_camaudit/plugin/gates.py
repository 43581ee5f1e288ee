"""The dataset gates' pytest side: rows travel on reports, the controller judges and fails the run.

A ``pytest_runtest_makereport`` wrapper puts a test's object rows on its report as
``camaudit_objects``; under pytest-xdist they reach the controller with the report. Like pytest's
own ``--max-warnings``, the controller's ``pytest_sessionfinish`` sets the exit status to 1
(``TESTS_FAILED``) when a gate fails and the run would otherwise have passed; the terminal summary
lists each failed gate as "expected …, got …" and the per-class tables go to the terminal and the
HTML report (``RunCollector.tables``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .keys import AUDITOR, COLLECTOR, SETTINGS


class GatePlugin:
    """Registered on the controller and on every worker by the plugin's ``pytest_configure``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        auditor = item.stash.get(AUDITOR, None)
        if report.when == "call" and auditor is not None:
            rows = auditor.object_rows()
            if rows:
                report.camaudit_objects = rows  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not hasattr(self.config, "workerinput"):
            self.rows.extend(getattr(report, "camaudit_objects", None) or [])

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        from ..dataset.gates import evaluate_baseline, evaluate_gates
        from ..dataset.thresholds import tolerances

        settings = self.config.stash[SETTINGS]
        collector = self.config.stash[COLLECTOR]
        table, self.failures = evaluate_gates(self.rows)
        if table:
            collector.tables.append(table)
        if settings.baseline and not settings.update_baseline:
            btable, bfail = evaluate_baseline(self.rows, tolerances(settings.baseline_tolerance)["recall-drop"])
            if btable:
                collector.tables.append(btable)
            self.failures += bfail
        if settings.baseline and settings.update_baseline and self.rows:
            from ..dataset.baseline import write_manifest
            from .cases import resolve_path

            directory = resolve_path(self.config, "baseline", settings.baseline)
            assert directory is not None
            write_manifest(directory, collector.run_facts, sorted({r["key"] for r in self.rows}))
        if self.failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.failures:
            return
        tr = terminalreporter
        tr.write_sep("=", f"camaudit: {len(self.failures)} dataset gate(s) failed", red=True)
        for f in self.failures:
            tr.write_line(f"FAILED gate: {f}", red=True)


def configure(config: pytest.Config) -> GatePlugin:
    plugin = GatePlugin(config)
    config.pluginmanager.register(plugin, "camaudit-gates")
    return plugin
