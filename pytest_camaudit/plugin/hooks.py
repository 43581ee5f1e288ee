"""pytest entry point of pytest-camaudit (``pytest11: camaudit = pytest_camaudit.plugin.hooks``).

Loads without importing torch, torchvision, grad-cam or OpenCV: those come in with the fixtures
and only when a test asks for them. Case records travel on test reports as plain data, so a
pytest-xdist run reports every worker's cases; only the controller writes the HTML report.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..records import CaseRecord, Status, report_status
from .cases import camaudit_entry  # noqa: F401  (fixture)
from .collector import RunCollector
from .fixtures import camaudit, camaudit_cam_engine, camaudit_detector  # noqa: F401  (fixtures)
from .keys import AUDITOR, COLLECTOR, SETTINGS
from .options import add_options, resolve_settings

_FIXTURES = ("camaudit", "camaudit_cam_engine", "camaudit_detector")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "camaudit: an audit test of pytest-camaudit (set automatically on tests using its fixtures)")
    # pytest-xdist's own marker, registered here too so that suites grouping an image's tests for
    # `-n N --dist loadgroup` still run under --strict-markers where xdist is not installed
    config.addinivalue_line("markers", "xdist_group(name): run tests of the same group on one pytest-xdist worker (--dist loadgroup)")
    settings = resolve_settings(config)
    config.stash[SETTINGS] = settings
    config.stash[COLLECTOR] = RunCollector(settings, store=_figure_store(settings) if not _is_worker(config) else None,
                                           selection=_selection(config))
    if not _is_worker(config):
        config.pluginmanager.register(_ReportListener(config), "camaudit-report-listener")
    else:
        config.pluginmanager.register(_SentFigures(), "camaudit-sent-figures")
    from .integrations import Integrations  # pytest-html extras, JUnit properties, --camaudit-json

    config.pluginmanager.register(Integrations(config), "camaudit-integrations")
    from . import cases, gates

    cases.configure(config, settings)  # COCO-driven cases: marker, --camaudit-cases, baselines
    gates.configure(config)  # dataset-level gates, evaluated on the controller


def _figure_store(settings: Any) -> Any:
    """Figures go to disk as each case finishes: into the report's side folder, else beside the run file (none without either)."""
    if not settings.report and not settings.json:
        return None
    from pathlib import Path

    from ..report.files import assets_dir
    from ..report.store import FigureStore
    from ..runs.writer import figures_dir

    return FigureStore(assets_dir(Path(settings.report)) if settings.report else figures_dir(settings.json))


def _selection(config: pytest.Config) -> dict[str, Any]:
    """What this run selected: paths, ``-k``, ``-m`` and pytest-split's group, for the run file."""
    splits, group = config.getoption("splits", None), config.getoption("group", None)
    return {"args": [str(a) for a in config.args], "keyword": config.getoption("keyword", "") or "",
            "markexpr": config.getoption("markexpr", "") or "",
            "shard": {"splits": splits, "group": group} if splits else None}


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    settings = item.config.stash[SETTINGS]
    auditor = item.stash.get(AUDITOR, None)
    records = []
    if auditor is not None and report.when == "call":
        status = report_status(report)
        with_figures = bool(settings.report or settings.json) and (not status.passing or settings.report_all)
        if with_figures:  # the report layer (and Jinja2) is imported only when a case is drawn
            from ..report.figures import case_figures

        records = auditor.records(status, case_figures if with_figures else None, discover=settings.discover)
        _note_unrecorded_error(records, call)
        engine = auditor.engine
        report.camaudit_run = {  # type: ignore[attr-defined]
            "model": engine.detector.name,
            "identity": engine.detector.identity,
            "method": engine.method,
            "device": str(engine.detector.device),
        }
        if status is Status.FAILED and records:
            report.sections.append(("camaudit", _section(records)))
    elif report.when == "setup" and report.failed and any(f in getattr(item, "fixturenames", ()) for f in _FIXTURES):
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
        records = [CaseRecord(nodeid=item.nodeid, name=item.name, outcome=Status.ERROR.value, model=settings.model,
                              method=settings.method, error=message)]
    if records:
        report.camaudit = [r.to_dict() for r in records]  # type: ignore[attr-defined]
    return report


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in _FIXTURES):
            item.add_marker("camaudit")


class _SentFigures:
    """On an xdist worker: once a report is on its way to the controller, its figure bytes are dropped
    (the worker's own terminal reporter keeps every report until the end)."""

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for case in getattr(report, "camaudit", None) or []:
            for figure in case.get("figures", []):
                figure["png"] = figure["thumb"] = ""


class _ReportListener:
    """Controller-side listener: feeds reports to the run collector, writes the report at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.config.stash[COLLECTOR].add_report(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        import time

        collector = self.config.stash[COLLECTOR]
        collector.finished = time.time()
        path = self.config.stash[SETTINGS].report
        if not path:
            return
        from ..report import write_report

        try:
            target = write_report(path, collector.shown(), collector.summary(session.exitstatus),
                                  collector.store.folder if collector.store is not None else None)
        except OSError as exc:
            collector.problems.append(f"could not write the report to {path} ({exc}); check that its folder is writable")
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        collector.report_path = str(target)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        collector = self.config.stash[COLLECTOR]
        if not collector.cases and not collector.report_path and not collector.problems:
            return
        from ..runs.tables import terminal_lines

        terminalreporter.write_sep("-", "camaudit")
        for text, markup in terminal_lines(collector.summary(""), collector.problems, collector.report_path):
            terminalreporter.write_line(text, **markup)
