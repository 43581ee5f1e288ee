"""The plugin's one ``pytest_runtest_makereport`` wrapper: what a test's report carries.

After pytest made a report (in the process that ran the test, an xdist worker included), in this
order:

1. the case records (``report.camaudit``, plain dicts) of the test's audited images, with a
   ``camaudit`` section under a failure, and the run's facts (``report.camaudit_run``);
2. the data-driven objects' gate inputs (``report.camaudit_objects``: object rows, :mod:`.gates`);
3. what the rest of the ecosystem reads from the records (:mod:`.integrations`): JUnit properties
   and pytest-html extras.

The wrapper is ``tryfirst``, registered in ``pytest_configure``: the outermost of the plugin's
hook implementations, where pytest-html's extras have always been added.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..records import CaseRecord, RunFacts, Status, report_status
from .keys import AUDITOR, SETTINGS

AUDIT_FIXTURES = ("camaudit", "camaudit_cam_engine", "camaudit_detector")
"""The fixtures that make a test an audit test (marked ``camaudit``)."""


def _section(records: list[Any]) -> str:
    lines = []
    for r in records:
        lines.append(f"{r.name} ({r.image_size[0]}x{r.image_size[1]}): {len(r.detections)} detections ≥ 0.05"
                     if r.image_size else f"{r.name}: {r.error}")
        for d in r.detections[:5]:
            lines.append(f"  detected {d['label']} {d['score']:.3f} at {[round(v) for v in d['box']]}")
        for c in r.checks:
            lines.append(f"  {'PASS' if c.passed else 'FAIL'} {c.kind}: {c.message.splitlines()[0]}")
    return "\n".join(lines)


def _note_unrecorded_error(records: list[Any], call: pytest.CallInfo[None]) -> None:
    """Why a test failed, when none of its cases says so: a plugin error (bad expectation, model
    failure) becomes the last case's error; anything else (the test's own code raised) a note."""
    from ..errors import CamauditError

    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is None or not records or any(r.error or r.failed_checks for r in records):
        return
    text = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
    if isinstance(exc, CamauditError):
        records[-1].error = text
    elif not isinstance(exc, pytest.skip.Exception):
        records[-1].notes.append(f"the test failed outside the audit: {text}")


def case_records(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> list[CaseRecord]:
    """The case records of ``item``'s audited images once its call finished (or of a failed audit
    fixture's setup); sets the run's facts and the failure section on ``report``."""
    settings = item.config.stash[SETTINGS]
    auditor = item.stash.get(AUDITOR, None)
    records: list[CaseRecord] = []
    if auditor is not None and report.when == "call":
        status = report_status(report)
        with_figures = bool(settings.report or settings.json) and (not status.passing or settings.report_all)
        if with_figures:  # the report layer (and Jinja2) is imported only when a case is drawn
            from ..report.figures import case_figures

        records = auditor.records(status, case_figures if with_figures else None, discover=settings.discover,
                                  evidence=settings.keeps_evidence)
        _note_unrecorded_error(records, call)
        engine = auditor.engine
        facts: RunFacts = {"model": engine.detector.name, "identity": engine.detector.identity, "method": engine.method,
                           "device": str(engine.detector.device)}
        report.camaudit_run = facts  # type: ignore[attr-defined]
        if status is Status.FAILED and records:
            report.sections.append(("camaudit", _section(records)))
    elif report.when == "setup" and report.failed and any(f in getattr(item, "fixturenames", ()) for f in AUDIT_FIXTURES):
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
        records = [CaseRecord(nodeid=item.nodeid, name=item.name, outcome=Status.ERROR.value, model=settings.model,
                              method=settings.method, error=message)]
    return records


class Reports:
    """Registered by the plugin's ``pytest_configure`` (on the controller and on every worker)."""

    def __init__(self, config: pytest.Config) -> None:
        from .integrations import html_active

        self.config = config
        self.html = html_active(config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost of ours: pytest-html's extras are added here
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        records = case_records(item, call, report)
        if records:
            report.camaudit = [r.to_dict() for r in records]  # type: ignore[attr-defined]
        from .gates import attach_rows
        from .integrations import annotate

        attach_rows(item, report)
        if records:
            annotate(item, report, records, self.html)
        return report
