"""The run's typed vocabulary, the one import point for every layer: a case's status
(:mod:`.status`), the records of audited cases (:mod:`.cases`), the facts of a run that cross
layers (:mod:`.run`: object rows, tables, gate state, test entries, the run's facts, selection,
shards and summary, the run file's header) and discovery's verdict (:mod:`.discovery`).

Everything here is plain data (JSON-compatible dataclasses and ``TypedDict``\\ s), so that what a
worker sets on a test report arrives intact on the pytest-xdist controller and a run file reads
back as what was written. Nothing here imports numpy or torch.
"""

from __future__ import annotations

from .cases import UPPER_BOUNDS, CaseRecord, CheckRecord, DetectionRow, EvidenceRecord, ExpectedObject, FigureRecord, bound
from .discovery import AtlasEntry, DiscoveryClassRow, DiscoverySummary, DriftEntry, ExampleEntry, GroupRow
from .run import (
    BaselineCell,
    Environment,
    FinishedTest,
    GateState,
    ObjectRow,
    RunCounts,
    RunFacts,
    RunHeader,
    RunSpan,
    RunSummary,
    Selection,
    ShardEntry,
    ShardInfo,
    Table,
    VerdictSettings,
    make_gate_state,
)
from .status import SCORE_THRESHOLD, GateStateName, Status, report_status

__all__ = [
    "SCORE_THRESHOLD",
    "UPPER_BOUNDS",
    "AtlasEntry",
    "BaselineCell",
    "CaseRecord",
    "CheckRecord",
    "DetectionRow",
    "DiscoveryClassRow",
    "DiscoverySummary",
    "DriftEntry",
    "Environment",
    "EvidenceRecord",
    "ExpectedObject",
    "ExampleEntry",
    "FigureRecord",
    "FinishedTest",
    "GateState",
    "GateStateName",
    "GroupRow",
    "ObjectRow",
    "RunCounts",
    "RunFacts",
    "RunHeader",
    "RunSpan",
    "RunSummary",
    "Selection",
    "ShardEntry",
    "ShardInfo",
    "Status",
    "Table",
    "VerdictSettings",
    "bound",
    "make_gate_state",
    "report_status",
]
