"""pytest entry point of pytest-camaudit (``pytest11: camaudit = pytest_camaudit.plugin.hooks``).

Loads without importing torch, torchvision, grad-cam or OpenCV: those come in with the fixtures
and only when a test asks for them. Case records travel on test reports as plain data, so a
pytest-xdist run reports every worker's cases; only the controller writes the HTML report.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..records import Selection
from .cases import camaudit_entry  # noqa: F401  (fixture)
from .collector import RunCollector
from .fixtures import camaudit, camaudit_cam_engine, camaudit_detector  # noqa: F401  (fixtures)
from .heap import freeze_long_lived, thaw
from .keys import COLLECTOR, SETTINGS
from .options import add_options, resolve_settings
from .reports import AUDIT_FIXTURES


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # registered before pytest's own end-of-session cleanups (its unraisable-exception plugin's
    # gc.collect()), so it runs after them: they still skip what the session froze (plugin/heap.py)
    config.add_cleanup(thaw)
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
    from .integrations import Integrations  # pytest-html's summary line, --camaudit-json, --camaudit-markdown
    from .reports import Reports  # the one makereport wrapper: case records, gate inputs, JUnit properties, pytest-html extras

    config.pluginmanager.register(Integrations(config), "camaudit-integrations")
    config.pluginmanager.register(Reports(config), "camaudit-reports")
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


def _selection(config: pytest.Config) -> Selection:
    """What this run selected: paths, ``-k``, ``-m`` and pytest-split's group, for the run file."""
    splits, group = config.getoption("splits", None), config.getoption("group", None)
    return {"args": [str(a) for a in config.args], "keyword": config.getoption("keyword", "") or "",
            "markexpr": config.getoption("markexpr", "") or "",
            "shard": {"splits": splits, "group": group} if splits else None}


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in AUDIT_FIXTURES):
            item.add_marker("camaudit")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # an audit session's collected tests live to its end: frozen before the detector's import, whose
    # many collections would walk them again and again (plugin/heap.py); frozen again with the model
    if any(item.get_closest_marker("camaudit") for item in session.items):
        freeze_long_lived()


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
