"""What pytest-camaudit hands to the rest of the pytest ecosystem.

* **pytest-html** (when it writes a report, ``--html=…``): each failing or broken case's figures
  (boxes, CAM overlays, the image without context) become extras of its test, so they appear
  under the test in pytest-html's report too.
* **JUnit XML** (``--junitxml=…``): every measured value becomes a ``<property>`` of its test,
  ``camaudit.<case>.<check>.<metric>`` (e.g. ``camaudit.scene-3.png.cam_mass.mass = 0.412``), plus
  ``camaudit.<case>.verdict``; CI systems that read JUnit show them next to the test.
* **JSON** (``--camaudit-json=PATH``): the run's record, per case its detections, metrics,
  verdicts and figures, per test its gate inputs, and the run's identity — everything
  ``python -m pytest_camaudit merge`` needs (:mod:`pytest_camaudit.runs.layout` documents the layout);
* **Markdown** (``--camaudit-markdown=PATH``): a summary for ``$GITHUB_STEP_SUMMARY`` or a
  pull-request comment (:mod:`pytest_camaudit.runs.markdown`).
* **Discovery** (``--camaudit-discover``): its verdict line is a JUnit test-suite property
  ``camaudit.discovery`` (and ``camaudit.discovery.flagged``: the flagged classes) and a line in
  pytest-html's summary.

The first two work from the case records a test's report carries, in the process that ran the
test (an xdist worker included), so they see exactly what the HTML report sees. The JSON and
Markdown files are written on the controller, atomically, like the HTML report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..records import CaseRecord, Status
from ..runs.layout import case_metrics
from .keys import AUDITOR, COLLECTOR, SETTINGS

_MAX_HTML_EXTRAS = 8
"""At most this many figures per test go to pytest-html (its report embeds them)."""


def write_json(path: str | Path, collector: Any, exitstatus: Any) -> Path:
    """Write the run file (:mod:`pytest_camaudit.runs.layout`) of ``collector``'s run to ``path``."""
    from ..runs.layout import case_json, header
    from ..runs.writer import RunWriter

    folder = collector.store.folder if collector.store is not None else None
    cases = ((case_json(c), folder) for c in collector.sorted_cases())
    return RunWriter(path).write(header(collector.summary(exitstatus)), cases, collector.sorted_tests())


def html_active(config: pytest.Config) -> bool:
    """Whether pytest-html writes a report in this run (``--html=…``)."""
    return config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))


def annotate(item: pytest.Item, report: pytest.TestReport, cases: list[CaseRecord], html: bool) -> None:
    """JUnit properties of ``cases`` on ``item``, and pytest-html extras on a report that did not pass
    (called by :class:`~pytest_camaudit.plugin.reports.Reports` once the records are on ``report``)."""
    for case in cases:
        item.user_properties.append((f"camaudit.{case.name}.verdict", case.verdict.value))
        for key, value in case_metrics(case).items():
            item.user_properties.append((f"camaudit.{case.name}.{key}", "nan" if value is None else value))
    if html and not report.passed:
        _html_extras(item, report, cases)


def _html_extras(item: pytest.Item, report: pytest.TestReport, cases: list[CaseRecord]) -> None:
    from pytest_html import extras

    figures = [(c.name, f) for c in cases if c.verdict is not Status.PASSED for f in c.figures]
    if not figures:  # no --camaudit-report: the records carry no pictures, render them here
        from ..report.figures import case_figures

        auditor = item.stash.get(AUDITOR, None)
        for case in auditor.cases if auditor is not None else []:
            if any(not c.passed for c in case.checks) or report.failed:
                figures.extend((case.name, f) for f in case_figures(case.drawing()))
    report.extras = list(getattr(report, "extras", [])) + [  # type: ignore[attr-defined]
        extras.image(f.png, f"{name}: {f.title}", f.mime, f.mime.split("/")[-1].replace("jpeg", "jpg"))
        for name, f in figures[:_MAX_HTML_EXTRAS]
    ]


class Integrations:
    """Plugin object registered by :mod:`pytest_camaudit.plugin.hooks` (name ``camaudit-integrations``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
        """pytest-html: discovery's verdict line above its summary (runs after the controller judged it)."""
        import html

        discovery = self.config.stash[COLLECTOR].discovery or {}
        if discovery.get("line"):
            prefix.append(f"<p><b>{html.escape(discovery['line'])}</b></p>")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        settings = self.config.stash[SETTINGS]
        collector = self.config.stash[COLLECTOR]
        if settings.json:
            try:
                write_json(settings.json, collector, session.exitstatus)
            except OSError as exc:
                collector.problems.append(f"could not write the JSON summary to {settings.json} ({exc}); check that its folder is writable")
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if settings.markdown:
            from ..runs.markdown import write_markdown

            try:
                write_markdown(settings.markdown, collector.summary(session.exitstatus), collector.shown(), collector.report_path)
            except OSError as exc:
                collector.problems.append(f"could not write the Markdown summary to {settings.markdown} ({exc}); check that its folder is writable")
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def junit_suite_properties(config: pytest.Config, properties: dict[str, str]) -> None:
    """Add ``properties`` to the JUnit XML's test suite (when ``--junitxml`` writes one; before it is written)."""
    for plugin in config.pluginmanager.get_plugins():
        add = getattr(plugin, "add_global_property", None)
        if type(plugin).__name__ == "LogXML" and callable(add):
            for name, value in properties.items():
                add(name, value)
