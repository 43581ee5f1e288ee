"""The run's facts as they cross layers: object rows, tables, the gate state, test entries, the run's
facts, settings, selection and shards, the run summary and the run file's header.

They are ``TypedDict``\\ s: the same plain dicts the run file (JSON), pytest's report attributes and
pytest-xdist carry, typed where the code reads and writes them; a run file read back is one again.
"""

from __future__ import annotations

from typing import Any, TypedDict

from .discovery import DiscoverySummary
from .status import GateStateName


class BaselineCell(TypedDict, total=False):
    """What the baseline recorded of an object and how the two maps compare (``ObjectRow.baseline``)."""

    detected: bool
    mass: float | None
    score: float | None
    rank: float | None
    top_iou: float | None
    mass_region: str
    """Set when the mass is compared in the object's outline, not its box."""


class _ObjectRowRequired(TypedDict):
    case: str
    key: str
    annotation: Any
    label: str
    box: list[float]
    detected: bool
    detection: int | None
    score: float | None
    mass: float | None
    score_threshold: float
    gate_recall: float | None
    gate_mass: list[float] | None


class ObjectRow(_ObjectRowRequired, total=False):
    """One checked object of a data-driven case: the gate and baseline inputs
    (:func:`~pytest_camaudit.dataset.checks.object_row`).

    Attributes:
        case, key: the case's test id and its image's identity (content hash).
        annotation, label, box: the annotated object.
        detected, detection, score: whether (and by which detection, at what best score) it was found.
        mass: the judged CAM mass (in the region ``--camaudit-mass-region`` chose).
        score_threshold, gate_recall, gate_mass: its thresholds (``gate_mass``: ``[X, R]``).
        has_outline, mask_mass: the annotation has an outline; the mass inside it.
        mass_region, box_mass: the judged region when it is not the box; the box's mass then.
        baseline: the baseline's side (:class:`BaselineCell`; None: not in the baseline).
    """

    has_outline: bool
    mask_mass: float | None
    mass_region: str
    box_mass: float | None
    baseline: BaselineCell | None


class Table(TypedDict):
    """A summary table (gates, baseline, discovery, atlas drift, per class) for the report, the
    terminal, the Markdown summary and the run file."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str


class GateState(TypedDict):
    """Whether the dataset gates were judged and what failed.

    Attributes:
        state: ``judged``, ``incomplete`` (not every collected case ran) or ``deferred`` (a shard:
            judged in the merge).
        ran, collected: audit tests that finished, and that were selected.
        interrupted: the run was interrupted.
        failures: the gates' failure messages.
    """

    state: GateStateName
    ran: int
    collected: int
    interrupted: bool
    failures: list[str]


def make_gate_state(state: GateStateName = "judged", ran: int = 0, collected: int = 0, interrupted: bool = False,
               failures: list[str] | None = None) -> GateState:
    """A :class:`GateState` (the default: judged, nothing ran, nothing failed)."""
    return {"state": state, "ran": ran, "collected": collected, "interrupted": interrupted, "failures": list(failures or [])}


class FinishedTest(TypedDict):
    """One finished test (the run file's ``tests``): its outcome (a
    :class:`~pytest_camaudit.records.status.Status` value), whether it is an audit test, and its
    object rows."""

    nodeid: str
    outcome: str
    audit: bool
    objects: list[ObjectRow]


class RunFacts(TypedDict, total=False):
    """What an audit test's report carries of the run (``report.camaudit_run``): the detector's name
    and identity, the default method and the device (all four, or none before the first audit test)."""

    model: str
    identity: str
    method: str
    device: str


class VerdictSettings(TypedDict, total=False):
    """The settings that can change a verdict (``runs.layout.VERDICT_SETTINGS``), as given: options'
    plain values (``--camaudit-gate-mass`` and the like as their text), the run file's ``run.settings``."""

    model: str
    weights: str | None
    method: str
    score_threshold: float
    cases: str | None
    cases_images: str | None
    cases_split: str
    cases_names: str | None
    min_mass: float
    mass_region: str
    class_thresholds: str | None
    gate_recall: float | None
    gate_mass: str | None
    baseline: str | None
    update_baseline: bool
    baseline_tolerance: str | None
    discover: bool
    gate_discovery: bool


class ShardInfo(TypedDict):
    """A run that is one shard of pytest-split: its ``--splits`` and ``--group``."""

    splits: int
    group: int


class Selection(TypedDict, total=False):
    """What a run selected: its paths (``args``), ``-k`` (``keyword``) and ``-m`` (``markexpr``).

    ``shard`` is pytest-split's group while a run collects (the run summary keeps it apart, as
    ``RunSummary.shard``); a merge of shards that selected differently keeps each one's under ``per_shard``.
    """

    args: list[str]
    keyword: str
    markexpr: str
    shard: ShardInfo | None
    per_shard: list[Selection | None]


class RunSpan(TypedDict):
    """When a run started and finished (UTC, ``runs.layout`` time format) and how long it took, in seconds."""

    started: str
    finished: str
    duration: float


class ShardEntry(TypedDict):
    """One shard of a merged run (the run file's ``run.shards``): its file, its pytest-split group, the
    versions and times it ran with, and how it ended."""

    file: str
    shard: ShardInfo | None
    version: str | None
    python: str | None
    torch: str | None
    started: str | None
    finished: str | None
    duration: float | None
    exitstatus: str | None


class RunCounts(TypedDict, total=False):
    """A run's counts of cases and tests (``runs.tables.RunTotals.counts``)."""

    audited_cases: int
    failed_cases: int
    error_cases: int
    passed_cases: int
    tests: int
    failed_tests: int


class Environment(TypedDict):
    """The Python and torch versions a run used."""

    python: str
    torch: str


class RunSummary(RunCounts, total=False):
    """A run's facts, counts and tables: the report's header, the run file's header (see
    :func:`~pytest_camaudit.runs.layout.header`), the Markdown summary and the terminal; the same
    for one run (``RunCollector.summary``) and for its shards merged (``runs.merge.summarise``)."""

    model: str
    identity: str
    method: str
    device: str
    score_threshold: float
    started: str
    finished: str
    duration: float
    exitstatus: str
    version: str
    python: str
    torch: str
    settings: VerdictSettings
    """The settings that can change a verdict (``runs.layout.VERDICT_SETTINGS``), as given."""
    report_all: bool
    selection: Selection | None
    """What the run selected (a merge of shards: what they all selected, or each one's)."""
    shard: ShardInfo | None
    shards: list[ShardEntry]
    gates: GateState
    tables: list[Table]
    per_class: Table
    discovery: DiscoverySummary | None


class RunHeader(TypedDict):
    """The run file's header (:func:`~pytest_camaudit.runs.layout.header`): the run's facts (``run``: the
    :data:`~pytest_camaudit.runs.layout.RUN_KEYS` of its summary), its totals, gates and tables, and discovery."""

    run: RunSummary
    totals: RunCounts
    gates: GateState
    per_class: Table
    tables: list[Table]
    discovery: DiscoverySummary | None
