"""The dataset gates' pytest side: rows travel on reports, the controller judges and fails the run.

The plugin's one ``pytest_runtest_makereport`` wrapper (:mod:`.reports`) puts a test's object rows
on its report as ``camaudit_objects`` (:func:`attach_rows`); under pytest-xdist (``-n``, or ``--tx`` gateways to other hosts) they reach the
controller with the report, where the collector keeps them per test. Like pytest's own
``--max-warnings``, the controller's ``pytest_sessionfinish`` sets the exit status to 1
(``TESTS_FAILED``) when a gate fails and the run would otherwise have passed; the terminal summary
lists each failed gate as "expected …, got …" and the per-class tables go to the terminal and the
HTML report (``RunCollector.tables``).

Gates are judged only on a whole dataset. A run that did not finish (Ctrl-C, ``-x``, fewer audit
tests finished than were selected) shows its gate tables as "incomplete (N of M cases)"; a shard
(``--camaudit-defer-gates``, on by default under pytest-split's ``--splits N`` with N > 1) shows
them as "deferred to the merge". Neither judges nor fails anything: ``python -m pytest_camaudit
merge`` judges the gates over all shards.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..records import GateStateName, make_gate_state
from .keys import AUDITOR, COLLECTOR, SETTINGS


def deferred(config: pytest.Config) -> bool:
    """Whether this run defers its gates: the option, else whether pytest-split runs one of several groups."""
    choice = config.stash[SETTINGS].defer_gates
    if choice is not None:
        return bool(choice)
    return int(config.getoption("splits", None) or 0) > 1


def gate_state(ran: int, collected: int | None, interrupted: bool, defer: bool) -> tuple[GateStateName, str | None]:
    """``(state, why not judged)``: ``judged``, ``incomplete`` or ``deferred``; the reason is None when judged."""
    total = max(ran, collected or 0)
    if interrupted or ran < total:
        return "incomplete", f"incomplete ({ran} of {total} cases)"
    if defer:
        return "deferred", f"deferred to the merge ({ran} of {total} cases in this shard)"
    return "judged", None


def attach_rows(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put the gate inputs of ``item``'s data-driven cases (object rows) on its call's report
    (``report.camaudit_objects``; called by :class:`~pytest_camaudit.plugin.reports.Reports`)."""
    auditor = item.stash.get(AUDITOR, None)
    if report.when == "call" and auditor is not None:
        rows = auditor.object_rows()
        if rows:
            report.camaudit_objects = rows  # type: ignore[attr-defined]


class GatePlugin:
    """Registered on the controller and on every worker by the plugin's ``pytest_configure``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.failures: list[str] = []
        self.pending: str | None = None
        self.state: GateStateName = "judged"
        self.tables = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        n = sum(1 for item in session.items if item.get_closest_marker("camaudit") is not None)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["camaudit_collected"] = n  # every worker collects the whole selection
        else:
            self.config.stash[COLLECTOR].collected = n

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: a worker (popen or a remote gateway) says how many audit tests it collected."""
        n = getattr(node, "workeroutput", {}).get("camaudit_collected")
        collector = self.config.stash[COLLECTOR]
        if isinstance(n, int):
            collector.collected = max(collector.collected or 0, n)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        from ..dataset.gates import evaluate_baseline, evaluate_gates

        settings = self.config.stash[SETTINGS]
        collector = self.config.stash[COLLECTOR]
        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
        self.state, self.pending = gate_state(collector.ran, collector.collected, interrupted, deferred(self.config))
        rows = collector.rows()
        table, self.failures = evaluate_gates(rows, self.pending)
        if settings.baseline and not settings.update_baseline:
            btable, bfail = evaluate_baseline(rows, settings.parsed.tolerances.recall_drop, self.pending)
            self.failures += bfail
        else:
            btable = None
        new = [t for t in (table, btable) if t]
        collector.tables.extend(new)
        self.tables = len(new)
        from .discovery import judge

        self.failures += judge(self.config, settings, collector, self.pending)
        collector.gates = make_gate_state(self.state, collector.ran, max(collector.ran, collector.collected or 0), interrupted, self.failures)
        if settings.baseline and settings.update_baseline and rows:
            from ..dataset.baseline import write_manifest
            from .cases import resolve_path

            directory = resolve_path(self.config, "baseline", settings.baseline)
            assert directory is not None
            write_manifest(directory, collector.run_facts, sorted({r["key"] for r in rows}))
        if self.failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        if self.pending is not None and self.tables:
            where = self.config.stash[SETTINGS].json
            if self.state == "incomplete":
                then = "run the whole selection to the end to judge them"
            elif where:
                then = f"judge them by merging {where} with the other shards' files: `python -m pytest_camaudit merge SHARD.json...`"
            else:
                then = "add --camaudit-json=PATH to record this shard for `python -m pytest_camaudit merge`"
            tr.write_line(f"camaudit: dataset gates {self.pending}: nothing judged; {then}", yellow=True)
        if not self.failures:
            return
        from ..runs.tables import gate_failure_lines

        tr.write_sep("=", f"camaudit: {len(self.failures)} dataset gate(s) failed", red=True)
        for line in gate_failure_lines(self.failures):
            tr.write_line(line, red=True)


def configure(config: pytest.Config) -> GatePlugin:
    plugin = GatePlugin(config)
    config.pluginmanager.register(plugin, "camaudit-gates")
    return plugin
