"""Plain-data records of audited cases: what the report, the terminal summary and xdist carry.

Everything here is JSON-compatible (str, int, float, bool, None, list, dict) so that a record set
on a test report in a worker arrives intact on the pytest-xdist controller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypedDict

from .status import Status

UPPER_BOUNDS: dict[str, frozenset[str]] = {
    "context": frozenset({"drop"}),
    "pointing_game": frozenset({"distance"}),
    "odi": frozenset({"odi"}),
    "forbidden_mass": frozenset({"mass"}),
    "deletion_auc": frozenset({"auc"}),
    "baseline": frozenset({"mass_drop"}),
    "sanity_weights": frozenset({"rank_correlation"}),
    "sanity_target": frozenset({"rank_correlation"}),
}
"""Per check kind, the thresholds that are maxima (every other threshold is a minimum)."""


def bound(kind: str, key: str) -> str:
    """``'≤'`` when threshold ``key`` of check ``kind`` is a maximum, else ``'≥'``."""
    return "≤" if key in UPPER_BOUNDS.get(kind, frozenset()) else "≥"


class DetectionRow(TypedDict):
    """A detection a case record lists: its ``index``, ``box`` ``[x1, y1, x2, y2]`` in pixels (2 decimals),
    class name (``label``) and ``score`` (4 decimals)."""

    index: int
    box: list[float]
    label: str
    score: float


class ExpectedObject(TypedDict):
    """An object a test expected (``assert_detected``): its class name and box (None: anywhere in the image)."""

    label: str
    box: list[float] | None


@dataclass
class CheckRecord:
    """One assertion's verdict.

    Attributes:
        kind: ``"detected"``, ``"cam_mass"``, ``"context"``…
        passed: the verdict.
        message: the assertion message ("expected …, got …").
        label: class name the check is about, when there is one.
        box: ``[x1, y1, x2, y2]`` the check is about, when there is one.
        detection: index of the detection it used, when there is one.
        measured: measured values by name (a score, a mass…).
        thresholds: the thresholds they were held to, by the same names.
        figure: name of the case figure that illustrates it, when there is one.
    """

    kind: str
    passed: bool
    message: str
    label: str | None = None
    box: list[float] | None = None
    detection: int | None = None
    measured: dict[str, float | str | None] = field(default_factory=dict)
    thresholds: dict[str, float | str | None] = field(default_factory=dict)
    figure: str | None = None


@dataclass
class FigureRecord:
    """A picture on a case card.

    Attributes:
        name: the figure's name within its case (``"detections"``, ``"cam-eigencam-0"``…).
        title, caption: what the card says about it.
        png: the full-size picture, base64 (no ``data:`` prefix); PNG unless ``mime`` says
            otherwise (photographic overlays are stored as WebP or JPEG to keep reports small).
            Empty once the picture is stored on disk (``file``).
        width, height: its size in pixels.
        mime: ``"image/png"``, ``"image/webp"`` or ``"image/jpeg"``.
        thumb: a small JPEG preview, base64 (empty: the report makes one from ``png``).
        thumb_width, thumb_height: the preview's size.
        file, thumb_file: names of the stored full-size picture and preview in the run's figure
            folder (:class:`~pytest_camaudit.report.store.FigureStore`), once stored.
    """

    name: str
    title: str
    png: str
    caption: str = ""
    width: int = 0
    height: int = 0
    mime: str = "image/png"
    thumb: str = ""
    thumb_width: int = 0
    thumb_height: int = 0
    file: str = ""
    thumb_file: str = ""


@dataclass
class EvidenceRecord:
    """Where one audited object's evidence lies: a crop of its map in box coordinates and, with
    ``--camaudit-discover``, its context profile. A few KB at most (see :mod:`pytest_camaudit.surroundings`).

    Attributes:
        key: the object's identity across tests and shards: ``<image content hash>:<detection index>``
            (the same image and detection are one object however many tests check it).
        label: its class name.
        box: the detection's ``[x1, y1, x2, y2]`` in pixels.
        score: the detection's score.
        image_size: ``[width, height]``.
        method: the method of the map the crop was taken from (``None``: its checks computed no map).
        crop: that map on a ``20 × 20`` grid over the box grown by half its size on each side, as
            base64 ``uint8`` scaled to its maximum (:func:`~pytest_camaudit.surroundings.encode_grid`); ``""`` without a map.
        profile: with ``--camaudit-discover``, region name → the share of the score lost when that
            region was filled (:data:`~pytest_camaudit.surroundings.REGIONS`; negative: it rose;
            ``None``: the region lies outside the image); empty otherwise.
        neighbours: region name → class names of other detections (at the score threshold) the region overlaps.
        thumb: with ``--camaudit-discover``, a small JPEG (base64) of the image over the ring around
            the box, for the report's example cards; ``thumb_rect`` is that rectangle in pixels.
    """

    key: str
    label: str
    box: list[float]
    score: float
    image_size: list[int] = field(default_factory=list)
    method: str | None = None
    crop: str = ""
    profile: dict[str, float | None] = field(default_factory=dict)
    neighbours: dict[str, list[str]] = field(default_factory=dict)
    thumb: str = ""
    thumb_rect: list[int] = field(default_factory=list)


@dataclass
class CaseRecord:
    """An audited image within a test.

    Attributes:
        nodeid: the pytest node id of the test.
        name: the case's name (the image's file name unless the test gave one).
        source: where the image came from (a path, or "numpy array"…).
        outcome: the test's outcome: a :class:`Status` value (``passed``, ``failed``, ``error``,
            ``skipped``, ``xfailed``, ``xpassed``), as a plain string.
        image_size: ``[width, height]``.
        model, method: the detector and default CAM method.
        detections: ``{"box", "label", "score", "index"}`` for detections above the display floor.
        expected: ``{"label", "box"}`` of the objects the test expected.
        checks: the assertions run on this case, in order.
        figures: rendered pictures (only for cases that go into the report).
        error: what made the case unusable (bad input, a model error), when something did.
        notes: conversions and facts worth showing (EXIF applied, image scaled…).
        evidence: where the evidence of each object the case's checks matched lies (:class:`EvidenceRecord`).
    """

    nodeid: str
    name: str
    source: str = ""
    outcome: str = "passed"
    image_size: list[int] = field(default_factory=list)
    model: str = ""
    method: str = ""
    detections: list[DetectionRow] = field(default_factory=list)
    expected: list[ExpectedObject] = field(default_factory=list)
    checks: list[CheckRecord] = field(default_factory=list)
    figures: list[FigureRecord] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    evidence: list[EvidenceRecord] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[CheckRecord]:
        return [c for c in self.checks if not c.passed]

    @property
    def status(self) -> Status:
        """Its test's outcome, or ``error`` when the case was unusable."""
        return Status.of(self.outcome, self.error)

    @property
    def verdict(self) -> Status:
        """Its status, but ``failed`` when one of its checks failed (and it was usable)."""
        status = self.status
        return Status.FAILED if status is not Status.ERROR and self.failed_checks else status

    @property
    def labels(self) -> list[str]:
        """Class names this case is about (expected objects and checks), sorted."""
        found = {e["label"] for e in self.expected if e.get("label")} | {c.label for c in self.checks if c.label}
        return sorted(str(x) for x in found)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseRecord:
        d = {k: v for k, v in d.items() if k in _CASE_FIELDS}  # tolerate records from newer versions
        d["checks"] = [CheckRecord(**_known(CheckRecord, c)) for c in d.get("checks", [])]
        d["figures"] = [FigureRecord(**_known(FigureRecord, f)) for f in d.get("figures", [])]
        d["evidence"] = [EvidenceRecord(**_known(EvidenceRecord, e)) for e in d.get("evidence", [])]
        return cls(**d)


def _known(kind: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in d.items() if k in names}


_CASE_FIELDS = frozenset(f.name for f in fields(CaseRecord))
