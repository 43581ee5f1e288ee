"""Judging a class: does a group of its objects rest on something beside their boxes?

A class is **flagged** when at least :data:`CLASS_SHARE` of its profiled objects rest on a place
beside their box — each loses at least ``margin`` (default :data:`MARGIN`) of its score there,
beyond what it loses elsewhere (:func:`~.groups.specific`) — and one of their groups
(:mod:`.groups`) holds at least :data:`MIN_GROUP` objects and :data:`MIN_SHARE` of the class, its
members losing on average at least ``margin`` where their evidence sits. A group whose evidence is
the surroundings as a whole (no single place) must hold :data:`DIFFUSE_SHARE` of the class. Below
:data:`MIN_OBJECTS` profiled objects a class is reported as "too few objects", not judged; so is a
group below :data:`MIN_GROUP`.

Where a group's evidence sits is the place (ring sector or ``far``) where its members' specific loss
(:func:`~.groups.specific`) is largest, unless their diffuse part is larger: then it is ``outside``
(its surroundings as a whole). The margin is held against that specific (or diffuse) loss; the
report shows the plain share of the score lost there. The thresholds come from measurements on the zoo's
detectors (see ``benchmarks/bench_discovery.py`` and README): on clean models' objects a single
region rarely takes more than a fifth of the score, while the shortcut twins' tagged triangles lose
most of it when the tag's corner is filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..surroundings import PLACES, REGIONS, WORDS
from .groups import FEATURES, Group, group_objects, losses
from .objects import AuditedObject

MARGIN = 0.5
"""Default share of its score a group's members must lose, on average, where their evidence sits."""

MIN_GROUP = 5
"""Smallest group that is judged."""

MIN_SHARE = 0.1
"""Smallest share of a class's profiled objects a group must hold to flag the class."""

CLASS_SHARE = 0.3
"""Smallest share of a class's objects that must rest on a place beside their box for it to be flagged.
Small, borderline detections lose score when anything near them is filled: on the clean zoo YOLO,
about a fifth of the stars lose the margin somewhere (a few groups of them above their boxes), while
the shortcut twins' tagged triangles do so for half (Faster R-CNN) and four fifths (YOLO)."""

DIFFUSE_SHARE = 0.5
"""Smallest share of a class a group must hold to flag it when its evidence is the surroundings as a
whole: filling everything around a box is a strong change, and about one clean circle in ten of the
zoo's detectors loses half its score to it (while no single place moves it)."""

MIN_OBJECTS = 10
"""Smallest number of profiled objects a class needs to be judged."""

EXAMPLES = 6
"""Objects of a group shown in the report (those that lose most where the group's evidence sits)."""

FEATURES_REGION = [*PLACES, "outside"]
"""The region each feature of :data:`~.groups.FEATURES` stands for (the diffuse part: ``outside``)."""


@dataclass
class GroupFinding:
    """What the report, the Markdown summary and the run file say of one group (plain data)."""

    size: int
    share: float
    status: str
    """``flagged``, ``below margin``, ``minor`` (under :data:`MIN_SHARE` of the class, :data:`DIFFUSE_SHARE` for
    ``outside``, or its class under :data:`CLASS_SHARE`) or ``too few objects``."""
    region: str
    where: str
    loss: float
    profile: dict[str, float]
    neighbours: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    """Keys of the objects shown as cards."""
    members: list[str] = field(default_factory=list)


@dataclass
class ClassFinding:
    """One class's discovery verdict and what it rests on (plain data)."""

    label: str
    objects: int
    """Objects with a context profile."""
    unprofiled: int
    margin: float | None
    """``None``: waived (``--camaudit-class-thresholds 'CLASS: discover=off'``)."""
    status: str
    """``flagged``, ``clear``, ``too few objects``, ``waived`` or ``no profiles``."""
    profile: dict[str, float]
    reliant: float = 0.0
    """Share of the profiled objects that lose at least the margin at some place beside their box (or all around it)."""
    groups: list[GroupFinding] = field(default_factory=list)


def place_of(specific: np.ndarray) -> str:
    """The region a group's evidence sits in, from its mean specific losses (see the module docstring)."""
    return FEATURES_REGION[max(range(len(FEATURES)), key=lambda i: (specific[i], -i))]


def describe(mean: np.ndarray, region: str) -> str:
    """In words: the region, and a second place that costs nearly as much."""
    words = WORDS[region]
    if region == "outside":
        return words
    others = [p for p in PLACES if p != region and mean[REGIONS.index(p)] >= 0.8 * mean[REGIONS.index(region)]]
    return words + (f" and {WORDS[others[0]]}" if others else "")


def _neighbours(objects: Sequence[AuditedObject], group: Group, region: str) -> dict[str, int]:
    """Class → how many of the group's members had a detection of it in ``region``."""
    counts: dict[str, int] = {}
    for i in group.members:
        for name in objects[i].neighbours.get(region, []):
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def judge_group(objects: Sequence[AuditedObject], group: Group, profiled: int, margin: float) -> GroupFinding:
    """The verdict on one group of a class with ``profiled`` profiled objects."""
    region = place_of(group.specific)
    loss = float(group.mean[REGIONS.index(region)])
    strength = float(group.specific[FEATURES_REGION.index(region)])
    share = len(group.members) / profiled
    if len(group.members) < MIN_GROUP:
        status = "too few objects"
    elif share < (DIFFUSE_SHARE if region == "outside" else MIN_SHARE):
        status = "minor"
    else:
        status = "flagged" if strength >= margin else "below margin"
    top = sorted(group.members, key=lambda i: (-losses(objects[i])[REGIONS.index(region)], objects[i].key))[:EXAMPLES]
    neighbours = _neighbours(objects, group, region)
    where = describe(group.mean, region)
    common = [(n, k) for k, n in neighbours.items() if 2 * n >= len(group.members)]
    if common and region != "outside" and len(group.members) >= MIN_GROUP:  # filling it removed a neighbour of most members: say so
        n, k = max(common)
        where += f" (where a neighbouring {k} is, for {n} of {len(group.members)})"
    return GroupFinding(len(group.members), round(share, 4), status, region, where, round(loss, 4),
                        {r: round(float(v), 4) for r, v in zip(REGIONS, group.mean, strict=True)},
                        neighbours, [objects[i].key for i in top], [objects[i].key for i in group.members][:1000])


def judge_class(label: str, objects: Sequence[AuditedObject], margin: float | None) -> ClassFinding:
    """The verdict on one class (``objects`` sorted by key; ``margin`` None: waived)."""
    profiled = [o for o in objects if o.profile is not None]
    mean = np.mean([losses(o) for o in profiled], axis=0) if profiled else np.zeros(len(REGIONS))
    finding = ClassFinding(label, len(profiled), len(objects) - len(profiled), margin, "clear",
                           {r: round(float(v), 4) for r, v in zip(REGIONS, mean, strict=True)})
    if not profiled:
        finding.status = "no profiles"
        return finding
    groups = group_objects(profiled, MARGIN if margin is None else margin)
    finding.groups = [judge_group(profiled, g, len(profiled), MARGIN if margin is None else margin) for g in groups]
    finding.reliant = round(sum(len(g.members) for g in groups) / len(profiled), 4)
    if finding.reliant < CLASS_SHARE:
        for g in finding.groups:
            g.status = "minor" if g.status == "flagged" else g.status
    if margin is None:
        finding.status = "waived"
    elif len(profiled) < MIN_OBJECTS:
        finding.status = "too few objects"
        for g in finding.groups:
            g.status = "too few objects"
    elif any(g.status == "flagged" for g in finding.groups):
        finding.status = "flagged"
    return finding
