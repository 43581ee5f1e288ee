"""Discovery's verdict as it crosses layers: the summary and its parts, as the run file keeps them.

``TypedDict``\\ s over the plain dicts :meth:`~pytest_camaudit.discovery.summary.Discovery.as_dict`
makes (the report's section, the Markdown summary, the run file's header, a merge's input): a run
file read back is one again.
"""

from __future__ import annotations

from typing import TypedDict

from .status import GateStateName


class GroupRow(TypedDict):
    """One group of a class (:class:`~pytest_camaudit.discovery.judge.GroupFinding` as plain data).

    Attributes:
        size, share: its objects, and their share of the class's profiled objects.
        status: ``flagged``, ``below margin``, ``minor`` or ``too few objects``.
        region, where: the region its evidence sits in, and that place in words.
        loss: the mean share of the score lost when that region is filled.
        profile: region → the group's mean loss there.
        neighbours: class → how many of its objects have a detection of that class in the region.
        examples, members: keys of the objects shown as cards, and of its members (at most 1000).
    """

    size: int
    share: float
    status: str
    region: str
    where: str
    loss: float
    profile: dict[str, float]
    neighbours: dict[str, int]
    examples: list[str]
    members: list[str]


class DiscoveryClassRow(TypedDict):
    """One class's verdict (:class:`~pytest_camaudit.discovery.judge.ClassFinding` as plain data).

    Attributes:
        label: the class.
        objects, unprofiled: its objects with a context profile, and without one.
        margin: the loss that counts (None: waived).
        status: ``flagged``, ``clear``, ``too few objects``, ``waived`` or ``no profiles``.
        profile: region → the class's mean loss there.
        reliant: share of the profiled objects that lose at least the margin beside their box.
        groups: its groups.
    """

    label: str
    objects: int
    unprofiled: int
    margin: float | None
    status: str
    profile: dict[str, float]
    reliant: float
    groups: list[GroupRow]


class AtlasEntry(TypedDict):
    """One class's evidence atlas (:meth:`~pytest_camaudit.discovery.atlas.Atlas.encoded`): the ``20 × 20``
    grid as :func:`~pytest_camaudit.surroundings.encode_grid` text, from ``n`` crops of ``method``."""

    grid: str
    n: int
    method: str


class ExampleEntry(TypedDict):
    """An object shown as a card: its :class:`~pytest_camaudit.records.EvidenceRecord` fields, and the
    test (``nodeid``) and case (``case``, the image's name) it was audited in."""

    key: str
    label: str
    box: list[float]
    score: float
    image_size: list[int]
    method: str | None
    crop: str
    profile: dict[str, float | None]
    neighbours: dict[str, list[str]]
    thumb: str
    thumb_rect: list[int]
    nodeid: str
    case: str


class DriftEntry(TypedDict):
    """One class's atlas against the baseline's: ``drift`` (``1 − r``; None when either is missing or
    constant), the objects on each side, the ``atlas-drift`` tolerance (None: none given) and the verdict
    (``pass``, ``FAIL`` or ``shown``)."""

    drift: float | None
    n: int
    baseline_n: int
    tolerance: float | None
    verdict: str


class DiscoverySummary(TypedDict, total=False):
    """Discovery's verdict (:meth:`~pytest_camaudit.discovery.summary.Discovery.as_dict`).

    Attributes:
        state, pending: ``judged``, ``deferred`` or ``incomplete``, and why it was not judged now.
        enabled: discovery ran (``--camaudit-discover``); else only the atlases (and drift) are kept.
        flagged: the flagged classes.
        classes: per class its verdict.
        atlases: class → its evidence atlas.
        examples: object key → the object shown as a card.
        drift, drift_note: class → its drift from the baseline's atlas; why there is none.
        baseline: class → the baseline's atlas the drift was measured against (a merge measures the same).
        failures: what fails the run (``--camaudit-gate-discovery``, ``atlas-drift``).
        line: the terminal line.
        settings: the judge's constants.
    """

    state: GateStateName
    pending: str | None
    enabled: bool
    flagged: list[str]
    classes: list[DiscoveryClassRow]
    atlases: dict[str, AtlasEntry]
    examples: dict[str, ExampleEntry]
    drift: dict[str, DriftEntry]
    drift_note: str
    baseline: dict[str, AtlasEntry]
    failures: list[str]
    line: str
    settings: dict[str, float]
