"""The run's typed vocabulary, the one import point for every layer: a case's status
(:mod:`.status`), the records of audited cases (:mod:`.cases`) and the facts of a run that cross
layers (:mod:`.run`: object rows, tables, gate state, test entries, discovery and run summaries).

Everything here is plain data (JSON-compatible dataclasses and ``TypedDict``\\ s), so that what a
worker sets on a test report arrives intact on the pytest-xdist controller and a run file reads
back as what was written. Nothing here imports numpy or torch.
"""

from __future__ import annotations

from .cases import UPPER_BOUNDS, CaseRecord, CheckRecord, EvidenceRecord, FigureRecord, bound
from .run import (
    BaselineCell,
    DiscoverySummary,
    Environment,
    FinishedTest,
    GateState,
    GateStateName,
    ObjectRow,
    RunCounts,
    RunSummary,
    Table,
    make_gate_state,
)
from .status import SCORE_THRESHOLD, Status, report_status

__all__ = [
    "SCORE_THRESHOLD",
    "UPPER_BOUNDS",
    "BaselineCell",
    "CaseRecord",
    "CheckRecord",
    "DiscoverySummary",
    "Environment",
    "EvidenceRecord",
    "FigureRecord",
    "FinishedTest",
    "GateState",
    "GateStateName",
    "ObjectRow",
    "RunCounts",
    "RunSummary",
    "Status",
    "Table",
    "bound",
    "make_gate_state",
    "report_status",
]
