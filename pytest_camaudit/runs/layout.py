"""The run file (``--camaudit-json=PATH``, and what ``merge --json`` writes): format and records.

One JSON document, laid out one entry per line so that a reader can stream it (:mod:`.reader`)::

    {"format": "pytest-camaudit/run/2",
    "run": {model, identity, method, device, score_threshold, version, exitstatus, started, finished,
            duration, python, torch, settings: {<every verdict-affecting setting>}, report_all,
            selection: {args, keyword, markexpr}, shard: {splits, group} | null, shards: [...]},
    "totals": {audited_cases, failed_cases, error_cases, passed_cases, tests, failed_tests},
    "gates": {state: "judged" | "deferred" | "incomplete", ran, collected, interrupted, failures: [...]},
    "per_class": {title, columns, rows, note},
    "tables": [{title, columns, rows, note}, ...],
    "discovery": {<see pytest_camaudit.discovery.summary>} | null,
    "cases": [
    {<one case per line, see case_json>},
    ...
    ],
    "tests": [
    {"nodeid", "outcome", "audit", "objects": [<the gate inputs: one row per checked object>]},
    ...
    ],
    "end": {"cases": <count>, "tests": <count>}}

Cases are in ``(nodeid, name)`` order and tests in node-id order, so several files merge as sorted
streams. A case's figures are files in the folder beside the file (``run.json`` →
``run_files/``), named by content like the report's side files. ``run.shards`` is only in a
merged file: per shard its file, label and times. NaN is written as ``null``. Every line is
plain JSON (no raw newline inside an entry), so ``json.load`` reads the whole file too.
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import asdict
from typing import Any, cast

from ..records import CaseRecord, Environment, RunCounts, RunHeader, RunSummary, make_gate_state

FORMAT = "pytest-camaudit/run/3"
"""The ``format`` field; bumped when the layout changes incompatibly (``…/summary/1`` had no figures, tests or identity;
``…/run/2`` no evidence per case and no discovery)."""

VERDICT_SETTINGS = ("model", "weights", "method", "score_threshold", "cases", "cases_images", "cases_split", "cases_names", "min_mass", "mass_region",
                    "class_thresholds", "gate_recall", "gate_mass", "baseline", "update_baseline", "baseline_tolerance", "discover",
                    "gate_discovery")
"""Settings that can change a verdict: shards that differ in any of them are not one run."""

RUN_KEYS = ("model", "identity", "method", "device", "score_threshold", "version", "exitstatus", "started", "finished", "duration",
            "python", "torch", "settings", "report_all", "selection", "shard", "shards")
"""The keys of ``run``, in the order they are written."""

TOTAL_KEYS = ("audited_cases", "failed_cases", "error_cases", "passed_cases", "tests", "failed_tests")

TIMING_KEYS = ("started", "finished", "duration")
"""The ``run`` keys that differ between two runs of the same tests on the same model."""


def plain(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def case_metrics(case: CaseRecord) -> dict[str, float | str | None]:
    """``"<check>.<metric>" → value`` for every measured value of ``case`` (``#2``… on repeats)."""
    out: dict[str, float | str | None] = {}
    for check in case.checks:
        for metric, value in check.measured.items():
            key = f"{check.kind}.{metric}"
            n = 2
            while key in out:
                key = f"{check.kind}#{n}.{metric}"
                n += 1
            out[key] = plain(value)
    return out


def case_json(case: CaseRecord) -> dict[str, Any]:
    """One case as a line of the run file: the whole record (figures as file names) plus its verdict and metrics."""
    return plain({
        "nodeid": case.nodeid,
        "name": case.name,
        "source": case.source,
        "outcome": case.outcome,
        "verdict": case.verdict.value,
        "error": case.error,
        "image_size": case.image_size,
        "model": case.model,
        "method": case.method,
        "detections": case.detections,
        "expected": case.expected,
        "metrics": case_metrics(case),
        "checks": [
            {"kind": c.kind, "passed": c.passed, "label": c.label, "box": c.box, "detection": c.detection,
             "measured": c.measured, "thresholds": c.thresholds, "message": c.message, "figure": c.figure}
            for c in case.checks
        ],
        "figures": [{k: v for k, v in asdict(f).items() if k not in ("png", "thumb")} for f in case.figures],
        "notes": case.notes,
        "evidence": [asdict(e) for e in case.evidence],
    })


def case_from_json(d: dict[str, Any]) -> CaseRecord:
    """The :class:`~pytest_camaudit.records.CaseRecord` of a case line (its figures name files)."""
    return CaseRecord.from_dict({**d, "figures": [{**f, "png": "", "thumb": ""} for f in d.get("figures", [])]})


def sort_key(case: dict[str, Any]) -> tuple[str, str]:
    """The order of cases in a run file."""
    return (str(case["nodeid"]), str(case["name"]))


def environment() -> Environment:
    """The Python and torch versions (torch's from its metadata when it was not imported: no import here)."""
    torch = sys.modules.get("torch")
    version = getattr(torch, "__version__", None)
    if version is None:
        from importlib import metadata

        try:
            version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            version = "not installed"
    return {"python": platform.python_version(), "torch": str(version)}


def header(summary: RunSummary) -> RunHeader:
    """The run file's header (plain JSON) from a run summary (what the report's header shows)."""
    gates = summary.get("gates") or make_gate_state()
    per_class = summary.get("per_class") or {"title": "Per class", "columns": [], "rows": [], "note": ""}
    return {
        "run": cast(RunSummary, {k: summary.get(k) for k in RUN_KEYS if k != "shards" or summary.get(k)}),
        "totals": cast(RunCounts, {k: summary.get(k) for k in TOTAL_KEYS}),
        "gates": gates,
        "per_class": per_class,
        "tables": summary.get("tables", []),
        "discovery": summary.get("discovery"),
    }
