"""What pytest-camaudit hands to the rest of the pytest ecosystem.

* **pytest-html** (when it writes a report, ``--html=…``): each failing or broken case's figures
  (boxes, CAM overlays, the image without context) become extras of its test, so they appear
  under the test in pytest-html's report too.
* **JUnit XML** (``--junitxml=…``): every measured value becomes a ``<property>`` of its test,
  ``camaudit.<case>.<check>.<metric>`` (e.g. ``camaudit.scene-3.png.cam_mass.mass = 0.412``), plus
  ``camaudit.<case>.verdict``; CI systems that read JUnit show them next to the test.
* **JSON** (``--camaudit-json=PATH``): a machine-readable summary of the run, per case its
  detections, metrics and verdicts (:func:`json_summary` documents the layout).

The first two work from the case records a test's report carries, in the process that ran the
test (an xdist worker included), so they see exactly what the HTML report sees. The JSON file is
written on the controller, atomically, like the HTML report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..records import CaseRecord
from .keys import AUDITOR, COLLECTOR, SETTINGS

JSON_FORMAT = "pytest-camaudit/summary/1"
"""The ``format`` field of the JSON summary; bumped when its layout changes incompatibly."""

_MAX_HTML_EXTRAS = 8
"""At most this many figures per test go to pytest-html (its report embeds them)."""


def _number(value: Any) -> Any:
    """JSON has no NaN: non-finite floats become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def case_metrics(case: CaseRecord) -> dict[str, Any]:
    """``"<check>.<metric>" → value`` for every measured value of ``case`` (``#2``… on repeats)."""
    out: dict[str, Any] = {}
    for check in case.checks:
        for metric, value in check.measured.items():
            key = f"{check.kind}.{metric}"
            n = 2
            while key in out:
                key = f"{check.kind}#{n}.{metric}"
                n += 1
            out[key] = _number(value)
    return out


def case_verdict(case: CaseRecord) -> str:
    """``passed``, ``failed`` (a check failed, or the test did), ``error`` (unusable) or ``skipped``."""
    if case.error is not None or case.outcome == "error":
        return "error"
    if any(not c.passed for c in case.checks):
        return "failed"
    return case.outcome


def _case_json(case: CaseRecord) -> dict[str, Any]:
    return {
        "nodeid": case.nodeid,
        "name": case.name,
        "source": case.source,
        "outcome": case.outcome,
        "verdict": case_verdict(case),
        "error": case.error,
        "image_size": case.image_size,
        "model": case.model,
        "method": case.method,
        "detections": case.detections,
        "expected": case.expected,
        "metrics": case_metrics(case),
        "checks": [
            {
                "kind": c.kind,
                "passed": c.passed,
                "label": c.label,
                "box": c.box,
                "measured": {k: _number(v) for k, v in c.measured.items()},
                "thresholds": {k: _number(v) for k, v in c.thresholds.items()},
                "message": c.message,
            }
            for c in case.checks
        ],
        "notes": case.notes,
    }


def json_summary(cases: Sequence[CaseRecord], summary: dict[str, Any]) -> dict[str, Any]:
    """The ``--camaudit-json`` document.

    Layout: ``{"format", "run": {model, identity, method, device, score_threshold, version,
    exitstatus, started, duration}, "totals": {audited_cases, failed_cases, error_cases,
    passed_cases, tests, failed_tests}, "per_class": {columns, rows}, "tables": [...],
    "cases": [{nodeid, name, source, outcome, verdict, error, image_size, model, method,
    detections: [{index, box, label, score}], expected: [{label, box}], metrics: {"<check>.<metric>": value},
    checks: [{kind, passed, label, box, measured, thresholds, message}], notes}]}``. Cases are in
    node-id order, every audited case included (passing ones too); NaN is written as ``null``.
    """
    run_keys = ("model", "identity", "method", "device", "score_threshold", "version", "exitstatus", "started", "duration")
    total_keys = ("audited_cases", "failed_cases", "error_cases", "passed_cases", "tests", "failed_tests")
    ordered = sorted(cases, key=lambda c: (c.nodeid, c.name))
    per_class = summary.get("per_class") or {}
    return {
        "format": JSON_FORMAT,
        "run": {k: summary.get(k) for k in run_keys},
        "totals": {k: summary.get(k) for k in total_keys},
        "per_class": {"columns": per_class.get("columns", []), "rows": per_class.get("rows", [])},
        "tables": summary.get("tables", []),
        "cases": [_case_json(c) for c in ordered],
    }


def write_json(path: str | Path, cases: Sequence[CaseRecord], summary: dict[str, Any]) -> Path:
    """Write :func:`json_summary` to ``path`` atomically (temporary file + ``os.replace``)."""
    from ..fileio import atomic_write

    target = Path(path)
    doc = json_summary(cases, summary)
    atomic_write(target, (json.dumps(doc, indent=1, sort_keys=False, allow_nan=False, default=str) + "\n").encode("utf-8"))
    return target


def _html_active(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))


class Integrations:
    """Plugin object registered by :mod:`pytest_camaudit.plugin.hooks` (name ``camaudit-integrations``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.html = _html_active(config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: runs after the plugin attached its records
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        raw = getattr(report, "camaudit", None)
        if not raw or report.when not in ("call", "setup"):
            return report
        cases = [CaseRecord.from_dict(d) for d in raw]
        for case in cases:
            item.user_properties.append((f"camaudit.{case.name}.verdict", case_verdict(case)))
            for key, value in case_metrics(case).items():
                item.user_properties.append((f"camaudit.{case.name}.{key}", "nan" if value is None else value))
        if self.html and not report.passed:
            self._html_extras(item, report, cases)
        return report

    def _html_extras(self, item: pytest.Item, report: pytest.TestReport, cases: list[CaseRecord]) -> None:
        from pytest_html import extras

        figures = [(c.name, f) for c in cases if case_verdict(c) != "passed" for f in c.figures]
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

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        path = getattr(self.config.stash[SETTINGS], "json", None)
        if not path or hasattr(self.config, "workerinput"):
            return
        collector = self.config.stash[COLLECTOR]
        try:
            write_json(path, collector.cases, collector.summary(exitstatus))
        except OSError as exc:
            collector.problems.append(f"could not write the JSON summary to {path} ({exc}); check that its folder is writable")
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
