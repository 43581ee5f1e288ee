"""The run's audited objects, each counted once, per class: what discovery reads from the case records.

An object is one detection of one image (:attr:`EvidenceRecord.key <pytest_camaudit.records.EvidenceRecord.key>`:
the image's content hash and the detection's index), however many tests checked it and in whatever
order their records arrive (xdist workers, shards). When several records describe it, the one kept
is chosen by content, not by arrival: a record with a profile before one without, one with a map
crop before one without, then the smallest ``(node id, case name)``. Objects are kept compactly
(ten numbers and a 400-byte crop); their pictures are fetched in a second pass for the few objects
the report shows (:func:`pick_examples`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..records import CaseRecord, EvidenceRecord
from ..surroundings import REGIONS, decode_grid


@dataclass
class AuditedObject:
    """One object's evidence, compact.

    Attributes:
        key: its identity (image content hash and detection index).
        label: its class.
        nodeid, case: the test and case the kept record came from (for the report's cards).
        score: the detection's score.
        profile: ``float64 [len(REGIONS)]`` share of the score lost per region (NaN: region empty), or None.
        crop: ``float32 [20, 20]`` map crop in ``[0, 1]``, or None; ``method`` its map's method.
        neighbours: region → classes of other detections there.
    """

    key: str
    label: str
    nodeid: str
    case: str
    score: float
    profile: np.ndarray | None
    crop: np.ndarray | None
    method: str | None
    neighbours: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rank(self) -> tuple[int, int, str, str]:
        """Smaller is preferred when several records describe this object."""
        return (self.profile is None, self.crop is None, self.nodeid, self.case)


def _profile(e: EvidenceRecord) -> np.ndarray | None:
    if not e.profile:
        return None
    values = [e.profile.get(name) for name in REGIONS]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _crop(e: EvidenceRecord) -> np.ndarray | None:
    if not e.crop:
        return None
    try:
        return decode_grid(e.crop)
    except ValueError:
        return None  # a damaged crop costs the object its crop, not the run


def as_object(e: EvidenceRecord, nodeid: str, case: str) -> AuditedObject:
    """The compact form of one evidence record."""
    return AuditedObject(e.key, e.label, nodeid, case, float(e.score), _profile(e), _crop(e), e.method, dict(e.neighbours))


@dataclass
class RunObjects:
    """Every object of a run, once, by class (see the module docstring for which record is kept)."""

    by_key: dict[str, AuditedObject] = field(default_factory=dict)

    def add_case(self, case: CaseRecord) -> None:
        for e in case.evidence:
            candidate = as_object(e, case.nodeid, case.name)
            kept = self.by_key.get(e.key)
            if kept is None or candidate.rank < kept.rank:
                self.by_key[e.key] = candidate

    def classes(self) -> dict[str, list[AuditedObject]]:
        """Class name → its objects sorted by key (the order every computation uses)."""
        out: dict[str, list[AuditedObject]] = {}
        for key in sorted(self.by_key):
            obj = self.by_key[key]
            out.setdefault(obj.label, []).append(obj)
        return dict(sorted(out.items()))


def collect(cases: Iterable[CaseRecord]) -> RunObjects:
    """The objects of ``cases`` (a run's records, or a merge's stream of them)."""
    objects = RunObjects()
    for case in cases:
        objects.add_case(case)
    return objects


def pick_examples(cases: Iterable[CaseRecord], wanted: dict[str, AuditedObject]) -> dict[str, EvidenceRecord]:
    """The full evidence records (with their pictures) of the objects in ``wanted``, as kept by :class:`RunObjects`."""
    out: dict[str, EvidenceRecord] = {}
    for case in cases:
        for e in case.evidence:
            obj = wanted.get(e.key)
            if obj is not None and (case.nodeid, case.name) == (obj.nodeid, obj.case) and e.key not in out:
                out[e.key] = e
    return out
