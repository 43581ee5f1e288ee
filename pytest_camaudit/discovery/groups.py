"""Groups of a class's objects whose evidence sits in the same place outside the object.

Each profiled object is a point. Its *specific* loss at each place (the 8 ring sectors and ``far``)
is the share of its score lost with that place filled minus the median over its places: an object
that loses much wherever something near it is filled (a small, borderline detection whose box cuts
into it) is fragile, not resting on one place, and loses nothing specific. To that come a
``diffuse`` part — what only filling everything outside the box takes away beyond its largest
single place — and, at a quarter of the weight, where its map's crop puts mass outside the box (a
map confined to the box adds nothing; one that sees the cue points the same way as the profile).
Objects whose specific or diffuse loss reaches ``margin`` somewhere (*reliant* objects) are
clustered by the *direction* of that point (cosine distance, average linkage, scikit-learn's
``AgglomerativeClustering`` cut at :data:`CUT`), so a triangle that loses 0.6 and one that loses
0.95 when the region past their top-left corner is filled fall in one group, and triangles tagged
at different corners fall in different ones.

Deterministic and independent of arrival order: objects come sorted by key, and at most
:data:`MAX_CLUSTERED` of them (the first by a hash of their key) are clustered; any others join
the group whose mean direction is nearest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..surroundings import PLACES, REGIONS, crop_cells
from .objects import AuditedObject

FEATURES: tuple[str, ...] = (*PLACES, "diffuse")
"""What a group's direction is made of: the places, then the diffuse part."""

CUT = 0.35
"""Cosine distance at which the clustering stops merging (directions within ~50° of each other join)."""

CROP_WEIGHT = 0.25
"""Weight of a map crop's outside mass against the profile in an object's point."""

MAX_CLUSTERED = 2000
"""At most this many reliant objects of a class are clustered (memory is quadratic in them)."""

_OUTSIDE = REGIONS.index("outside")
_PLACE_IDX = [REGIONS.index(p) for p in PLACES]


def losses(obj: AuditedObject) -> np.ndarray:
    """``float64 [len(REGIONS)]`` losses in ``[0, 1]`` (rises and empty regions count as 0)."""
    assert obj.profile is not None
    return np.clip(np.nan_to_num(obj.profile, nan=0.0), 0.0, 1.0)


def specific(obj: AuditedObject) -> np.ndarray:
    """``float64 [len(FEATURES)]``: the loss at each place beyond the object's median place loss, then the diffuse part."""
    x = losses(obj)
    places = x[_PLACE_IDX]
    return np.concatenate([np.clip(places - float(np.median(places)), 0.0, 1.0), [max(0.0, x[_OUTSIDE] - places.max())]])


def reliance(obj: AuditedObject) -> float:
    """The largest specific or diffuse loss of the object (see the module docstring)."""
    return float(specific(obj).max())


def direction(obj: AuditedObject) -> np.ndarray:
    """``float64 [len(FEATURES)]``: the specific losses, the diffuse part, plus a quarter of the crop's outside mass."""
    point = specific(obj)
    if obj.crop is not None:
        point[: len(PLACES)] += CROP_WEIGHT * crop_shares(obj.crop)
    return point


_CROP_CELLS = crop_cells()


def crop_shares(crop: np.ndarray) -> np.ndarray:
    """``float64 [len(PLACES)]``: the share of a crop's mass in each place (its ring cells; ``far`` past the ring)."""
    total = float(crop.sum())
    if total <= 0:
        return np.zeros(len(PLACES))
    return np.array([float(crop[_CROP_CELLS[p]].sum()) / total for p in PLACES])


@dataclass(frozen=True)
class Group:
    """Objects of one class whose evidence sits in the same place.

    Attributes:
        members: indices into the class's objects.
        mean: ``float64 [len(REGIONS)]`` the members' mean loss per region.
        specific: ``float64 [len(FEATURES)]`` their mean specific loss per place, then the diffuse part.
    """

    members: tuple[int, ...]
    mean: np.ndarray
    specific: np.ndarray


def _stable_order(objects: Sequence[AuditedObject], indices: list[int]) -> list[int]:
    return sorted(indices, key=lambda i: hashlib.sha1(objects[i].key.encode()).hexdigest())


def _cluster(points: np.ndarray) -> np.ndarray:
    """Cluster labels of ``points`` (``[n, d]``, n ≥ 2) by cosine distance, average linkage, cut at :data:`CUT`."""
    from sklearn.cluster import AgglomerativeClustering

    norms = np.linalg.norm(points, axis=1, keepdims=True)
    unit = points / np.where(norms > 0, norms, 1.0)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=CUT, metric="cosine", linkage="average")
    return np.asarray(model.fit_predict(unit))


def group_objects(objects: Sequence[AuditedObject], margin: float) -> list[Group]:
    """The groups of reliant objects among ``objects`` (profiled, sorted by key), largest first.

    An object is reliant when its specific or diffuse loss (:func:`specific`) reaches ``margin`` somewhere.
    """
    reliant = [i for i, o in enumerate(objects) if o.profile is not None and reliance(o) >= margin]
    if not reliant:
        return []
    order = _stable_order(objects, reliant)
    core, rest = order[:MAX_CLUSTERED], order[MAX_CLUSTERED:]
    points = np.array([direction(objects[i]) for i in core])
    labels = _cluster(points) if len(core) > 1 else np.zeros(1, dtype=int)
    members: dict[int, list[int]] = {}
    for i, lab in zip(core, labels.tolist(), strict=True):
        members.setdefault(int(lab), []).append(i)
    if rest:
        _assign(objects, members, rest)
    groups = [Group(tuple(sorted(m)), np.mean([losses(objects[i]) for i in m], axis=0), np.mean([specific(objects[i]) for i in m], axis=0))
              for m in members.values()]
    return sorted(groups, key=lambda g: (-len(g.members), g.members))


def _assign(objects: Sequence[AuditedObject], members: dict[int, list[int]], rest: list[int]) -> None:
    """Put each of ``rest`` in the group whose mean direction is nearest (cosine)."""
    labels = sorted(members)
    centres = np.array([np.mean([direction(objects[i]) for i in members[lab]], axis=0) for lab in labels])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    for i in rest:
        p = direction(objects[i])
        members[labels[int(np.argmax(centres @ (p / max(float(np.linalg.norm(p)), 1e-12))))]].append(i)
