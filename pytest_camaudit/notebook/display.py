"""A run's gate summary that shows itself, and IPython formatters for the plain types.

:class:`GateSummary` is a run's gate verdict as one object: read from a run file
(``--camaudit-json``) or judged from object rows, it says ``passed`` and shows its per-class table
in Jupyter (``_repr_html_``). :func:`register_formatters` teaches a running IPython to draw the
types that cannot draw themselves (they live below the report layer): a plain
:class:`~pytest_camaudit.audit.case.AuditCase` (e.g. ``Auditor(...).audit(...)``) as its case card,
a bare :class:`~pytest_camaudit.datatypes.CamMap` as its heat map. IPython is never imported here;
without a running IPython nothing is registered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..records import ObjectRow, RunSummary, Table

GATE_TITLE = "camaudit gates"
"""How the gate table's title begins (:func:`pytest_camaudit.dataset.gates.evaluate_gates`)."""


@dataclass(frozen=True)
class GateSummary:
    """A run's gate verdict.

    Attributes:
        state: ``judged``, ``deferred`` (a shard) or ``incomplete`` (not every case ran).
        failures: one message per failing gate.
        table: the per-class gate table (``title``, ``columns``, ``rows``, ``note``), ``None`` when no gate was set.
        run: the run's facts (model, method…) when read from a run file.
    """

    state: str = "judged"
    failures: tuple[str, ...] = ()
    table: Table | None = None
    run: RunSummary = field(default_factory=RunSummary)

    @property
    def passed(self) -> bool:
        """True when the gates were judged and none failed."""
        return self.state == "judged" and not self.failures

    @classmethod
    def from_run_file(cls, path: str | Path) -> GateSummary:
        """The gates of a run file written by ``--camaudit-json`` (or ``python -m pytest_camaudit merge --json``).

        Raises:
            RunFileError: the file is not a complete run file (the message names the line).
        """
        from ..runs.reader import RunFile

        header = RunFile(path).header
        gates = header.get("gates") or {}
        table = next((t for t in header.get("tables") or [] if str(t.get("title", "")).startswith(GATE_TITLE)), None)
        run = cast(RunSummary, dict(header.get("run") or {}))  # the run file's JSON
        return cls(str(gates.get("state", "judged")), tuple(gates.get("failures") or ()), table, run)

    @classmethod
    def from_rows(cls, rows: Iterable[ObjectRow]) -> GateSummary:
        """Judge the gates of object rows (what data-driven cases record: ``case.objects``)."""
        from ..dataset.gates import evaluate_gates

        table, failures = evaluate_gates(list(rows))
        return cls("judged", tuple(failures), table)

    def _repr_html_(self) -> str:
        from ..report.notebook import table_html

        empty = f"camaudit gates: {self.state}; no gate was set in this run"
        return table_html(self.table, self.failures, empty=empty)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else ("FAILED" if self.failures else self.state)
        return f"<GateSummary {verdict}: {len(self.failures)} failing>"


def _case_html(case: Any) -> str:
    """A plain case's card; a case that draws itself (a notebook case) keeps its own."""
    if hasattr(case, "_repr_html_"):
        html: str = case._repr_html_()
        return html
    from ..report.notebook import case_html

    try:
        drawing = case.drawing()
    except RuntimeError:  # released when its test ended
        drawing = None
    outcome = "failed" if any(not c.passed for c in case.checks) else "passed"
    record = case.to_record("", outcome) if drawing is not None else None
    if record is None:
        from ..records import CaseRecord

        record = CaseRecord(nodeid="", name=case.name, source=case.image.source, outcome=outcome, checks=list(case.checks))
    return case_html(record, drawing)


def _map_png(cam: Any) -> bytes:
    """A bare map's heat map (over black: a plain map does not know its image); a map that draws itself keeps its own."""
    if hasattr(cam, "_repr_png_"):
        png: bytes = cam._repr_png_()
        return png
    import numpy as np

    from ..report.notebook import map_picture, png_bytes

    return png_bytes(map_picture(np.zeros((1, 1, 3), np.uint8), cam.values))


def register_formatters(shell: Any = None) -> bool:
    """Register HTML / PNG formatters for ``AuditCase`` and ``CamMap`` on ``shell`` (default: the running IPython).

    Returns:
        True when a shell was found (registering twice is harmless), False outside IPython.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    from ..audit.case import AuditCase
    from ..datatypes import CamMap

    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(AuditCase, _case_html)
    formatters["image/png"].for_type(CamMap, _map_png)
    return True
