"""Localisation metrics on a CAM and boxes: plain functions on numpy arrays, no model needed.

Conventions (the same for every function here):

* A map is ``float [H, W]`` indexed ``map[y, x]`` (rows are ``y``). Only its positive part counts:
  ``pos = max(nan_to_num(cam), 0)`` — NaN counts as 0, negative evidence as none.
* A box is ``(x1, y1, x2, y2)`` in pixel coordinates where pixel ``(x, y)`` covers
  ``[x, x + 1) × [y, y + 1)``. Boxes are not rounded: a pixel partly inside a box counts with the
  fraction of its area inside (``w_p`` below).
* A *region* is a box, a sequence of boxes (a pixel's weight is the largest of its per-box
  coverages) or a mask of the map's exact shape ``[H, W]`` (bool, or floats in ``[0, 1]``). A 2-D
  array with the map's shape is always read as a mask, anything else as boxes.
* A map with no positive mass gives ``NaN`` (there is nothing to measure), never a number that
  looks like a verdict.

Metrics that rank pixels break ties without looking at pixel order: pixels of equal value share
the remaining places equally (see :func:`top_k_weights`), so transposing a map and its boxes never
changes a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import ExpectationError

Box = Sequence[float]
Region = np.ndarray | Box | Sequence[Box]


def _axis_coverage(lo: float, hi: float, n: int) -> np.ndarray:
    """``float [n]``: fraction of each pixel ``[i, i + 1)`` inside ``[lo, hi]`` (clipped to ``[0, n]``)."""
    edges = np.arange(n, dtype=np.float64)
    coverage: np.ndarray = np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0.0, 1.0)
    return coverage


def box_weights(shape: tuple[int, int], box: Box) -> np.ndarray:
    """``float64 [H, W]`` area of each pixel inside ``box`` (1 inside, fractions on the border)."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.outer(_axis_coverage(y1, y2, h), _axis_coverage(x1, x2, w))


def box_mass(cam: np.ndarray, box: Box) -> float:
    """Energy pointing game / relevance mass accuracy of one box.

    ``mass = Σ_{p ∈ box} pos_p / Σ_p pos_p`` with ``pos`` from :func:`positive` (NaN and ±inf
    count as 0, like every metric here), pixels weighted by the fraction of their area inside the
    box. ``NaN`` when the map has no positive mass (nothing to measure).

    Args:
        cam: ``float [H, W]``.
        box: ``(x1, y1, x2, y2)`` in pixels of ``cam``'s grid.
    """
    pos = positive(cam)
    total = float(pos.sum())
    if total <= 0.0 or not math.isfinite(total):
        return float("nan")
    h, w = pos.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    (r0, r1), (c0, c1) = _pixels_touched(y1, y2, h), _pixels_touched(x1, x2, w)
    if r1 <= r0 or c1 <= c0:
        return 0.0
    # only the pixels the box touches: every other weight is 0
    weights = np.outer(_axis_coverage(y1, y2, h)[r0:r1], _axis_coverage(x1, x2, w)[c0:c1])
    return float((pos[r0:r1, c0:c1] * weights).sum() / total)


def _pixels_touched(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Pixels ``[first, stop)`` of ``[0, n)`` that ``[lo, hi]`` may cover (a superset of those with coverage > 0)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0, n
    first = min(n, max(0, math.floor(lo)))
    return first, max(first, min(n, math.ceil(hi)))


def box_area_fraction(shape: tuple[int, int], box: Box) -> float:
    """Share of the image's area inside ``box``: the box mass a uniform map would get (chance)."""
    return float(box_weights(shape, box).sum() / (shape[0] * shape[1]))


# -- helpers ---------------------------------------------------------------------------------------
def positive(cam: np.ndarray) -> np.ndarray:
    """``float64 [H, W]``: ``max(nan_to_num(cam), 0)`` (±inf become 0 too).

    Raises:
        ExpectationError: ``cam`` is not a non-empty 2-D array.
    """
    a = np.asarray(cam)
    if a.dtype.kind != "f":  # ints, bools, nested lists of numbers
        a = a.astype(np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ExpectationError(f"`cam` must be a non-empty 2-D map [H, W], got shape {a.shape}")
    if np.isfinite(a).all():  # the usual map: one float64 copy with the negatives zeroed (a float32 map's own
        pos: np.ndarray = np.maximum(a, 0.0, dtype=np.float64)  # values: 4.7x faster than a float64 copy first, at 160x160)
        return pos
    return np.clip(np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def _boxes(region: Region) -> np.ndarray:
    arr = np.asarray(region, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ExpectationError(
            f"a region must be a box [x1, y1, x2, y2], a list of boxes or a mask of the map's shape, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ExpectationError(f"region boxes have a NaN or infinite coordinate: {arr.tolist()}")
    bad = (arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])
    if bad.any():
        raise ExpectationError(f"region box {arr[bad][0].tolist()} is degenerate (needs x1 < x2 and y1 < y2)")
    return arr


def is_mask(region: Region, shape: tuple[int, int]) -> bool:
    """A 2-D array of the map's shape, a bool array, or one that cannot be a list of boxes."""
    if not isinstance(region, np.ndarray) or region.ndim != 2:
        return False
    return region.shape == shape or region.dtype == bool or region.shape[1] != 4


def region_weights(shape: tuple[int, int], region: Region) -> np.ndarray:
    """``float64 [H, W]`` weight in ``[0, 1]`` of each pixel in ``region`` (see the module docstring).

    Raises:
        ExpectationError: a mask of another shape than the map (the wrong-image-size bug), a mask
            with NaN or values outside ``[0, 1]``, or a malformed / degenerate box.
    """
    if is_mask(region, shape):
        mask = np.asarray(region)
        if mask.shape != shape:
            raise ExpectationError(
                f"mask shape {mask.shape} does not match the map's {shape}; a mask is [H, W] (rows = y) "
                "at the image's size — resize it to the image first"
            )
        if mask.dtype == bool:
            return mask.astype(np.float64)
        m = mask.astype(np.float64)
        if not np.isfinite(m).all() or m.min() < 0.0 or m.max() > 1.0:
            raise ExpectationError("a float mask must hold finite values in [0, 1] (NaN is not 'outside'; use 0)")
        return m
    weights = np.zeros(shape, dtype=np.float64)
    for box in _boxes(region):
        np.maximum(weights, box_weights(shape, box), out=weights)
    return weights


def top_k_weights(values: np.ndarray, k: float) -> np.ndarray:
    """Selection weight ``s_p ∈ [0, 1]`` of each pixel in the top ``k`` (``Σ s_p = k``).

    Pixels are taken by decreasing value, whole groups of equal value at a time; the group that
    straddles place ``k`` shares the remaining places equally (each member gets the same fraction),
    so the result does not depend on pixel order.

    Args:
        values: ``float [...]`` (any shape; the result has the same shape).
        k: ``0 < k <= values.size`` places (need not be an integer).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    n = flat.size
    if not 0 < k <= n:
        raise ExpectationError(f"`k` must be in (0, {n}] pixels, got {k!r}")
    uniq, inverse, counts = np.unique(-flat, return_inverse=True, return_counts=True)  # groups, highest first
    before = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.float64)
    share = np.clip((k - before) / counts, 0.0, 1.0)
    return share[inverse].reshape(np.shape(values))


# -- the metric pack -------------------------------------------------------------------------------
def region_mass(cam: np.ndarray, region: Region) -> float:
    """Share of the map's positive mass inside ``region`` (mass on a forbidden region when the
    region is a watermark or a known spurious cue).

    ``mass = Σ_p pos_p · w_p / Σ_p pos_p`` with ``w_p`` the region weight of pixel ``p``;
    :func:`box_mass` for a single box. ``NaN`` when the map has no positive mass.
    """
    pos = positive(cam)
    total = float(pos.sum())
    if total <= 0.0:
        return float("nan")
    if isinstance(region, np.ndarray) and region.dtype == bool and region.shape == pos.shape:
        return float((pos * region).sum() / total)  # an outline's mask: the same products, no float copy of it
    return float((pos * region_weights(pos.shape, region)).sum() / total)


def peak_distance(cam: np.ndarray, region: Region) -> tuple[float, tuple[int, int]]:
    """Distance from the map's maximum to ``region``, for the pointing game.

    A pixel's distance is the Euclidean distance in pixels from its centre ``(x + ½, y + ½)`` to
    the nearest point of the region (0 on or inside a box; for a mask, to the nearest centre of a
    pixel with weight > 0). **Tie rule**: when several pixels share the maximum, the result is the
    *largest* of their distances — every maximal pixel must be near the region, so a flat map only
    "points" at a region that covers the whole image.

    Returns:
        ``(distance, (x, y))`` of the farthest maximal pixel; ``(nan, (-1, -1))`` when the map has
        no positive value, ``(inf, (x, y))`` when the region is empty.
    """
    pos = positive(cam)
    top = float(pos.max())
    if top <= 0.0:
        return float("nan"), (-1, -1)
    ys, xs = np.nonzero(pos == top)
    h, w = pos.shape
    if is_mask(region, (h, w)):
        inside = region_weights((h, w), region) > 0
        if not inside.any():
            return float("inf"), (int(xs[0]), int(ys[0]))
        import cv2

        dist_map = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
        d = dist_map[ys, xs]
    else:
        boxes = _boxes(region)
        if len(boxes) == 0:
            return float("inf"), (int(xs[0]), int(ys[0]))
        cx, cy = xs + 0.5, ys + 0.5
        dx = np.maximum(np.maximum(boxes[:, None, 0] - cx, cx - boxes[:, None, 2]), 0.0)
        dy = np.maximum(np.maximum(boxes[:, None, 1] - cy, cy - boxes[:, None, 3]), 0.0)
        d = np.hypot(dx, dy).min(axis=0)
    i = int(np.argmax(d))
    return float(d[i]), (int(xs[i]), int(ys[i]))


def pointing_game(cam: np.ndarray, region: Region, tolerance: float = 0.0) -> bool:
    """Pointing game (Zhang et al. 2018) with a pixel tolerance.

    ``hit = max_{p ∈ argmax(pos)} dist(centre_p, region) <= tolerance`` — see :func:`peak_distance`
    for the distance and the tie rule (every maximal pixel must be within ``tolerance``). A map
    with no positive value never hits.
    """
    if not (tolerance >= 0.0 and math.isfinite(tolerance)):
        raise ExpectationError(f"`tolerance` must be a finite number of pixels >= 0, got {tolerance!r}")
    d, _ = peak_distance(cam, region)
    return bool(d <= tolerance)  # NaN compares False


def top_k_intersection(cam: np.ndarray, region: Region, k: float) -> float:
    """Share of the map's top ``k`` pixels that lie in ``region`` (Theiner et al. 2022).

    ``TKI = Σ_p s_p · w_p / k`` with ``s_p`` the top-``k`` selection weights of :func:`top_k_weights`
    (ties share places) and ``w_p`` the region weight. ``NaN`` when the map has no positive mass.

    Args:
        k: number of pixels, ``0 < k <= H·W`` (need not be an integer).
    """
    pos = positive(cam)
    if float(pos.sum()) <= 0.0:
        return float("nan")
    s = top_k_weights(pos, k)
    return float((s * region_weights(pos.shape, region)).sum() / k)


def relevance_rank_accuracy(cam: np.ndarray, region: Region) -> float:
    """Relevance rank accuracy (Arras et al. 2022): top-``K`` intersection with ``K`` the region's area.

    ``RRA = TKI(cam, region, K)`` with ``K = Σ_p w_p``: of as many top pixels as the region has,
    the share that fall inside it. 1 when the map's largest values exactly fill the region.
    """
    shape = positive(cam).shape
    area = float(region_weights(shape, region).sum())
    if area <= 0.0:
        raise ExpectationError("the region is empty (area 0 on the map); relevance rank accuracy needs an object")
    return top_k_intersection(cam, region, min(area, float(shape[0] * shape[1])))


def odi(cam: np.ndarray, target: Box, others: Sequence[Box]) -> float:
    """Share of the map's mass on *other* ground-truth objects (lower is better).

    ``ODI = Σ_p pos_p · max(0, u_p − t_p) / Σ_p pos_p`` with ``u_p`` the weight of pixel ``p`` in
    the union of ``others`` and ``t_p`` its coverage by ``target``: mass where another object is
    and the explained one is not. 0 when there are no other objects; ``NaN`` for an empty map.
    """
    pos = positive(cam)
    total = float(pos.sum())
    if total <= 0.0:
        return float("nan")
    t = region_weights(pos.shape, target)
    u = region_weights(pos.shape, list(others)) if len(others) else np.zeros_like(pos)
    return float((pos * np.clip(u - t, 0.0, None)).sum() / total)


def mass_area(cam: np.ndarray, share: float = 0.9) -> float:
    """Smallest share of the image's area holding ``share`` of the map's mass.

    ``A(q) = n / (H·W)`` where ``n`` is the (fractional) number of pixels, taken by decreasing
    value, whose values sum to ``q · Σ pos`` — the last pixel counted with the fraction needed.
    Ties do not matter (equal values are interchangeable). ``NaN`` for an empty map.
    """
    if not 0.0 < share <= 1.0:
        raise ExpectationError(f"`share` must be in (0, 1], got {share!r}")
    pos = positive(cam)
    total = float(pos.sum())
    if total <= 0.0:
        return float("nan")
    v = np.sort(pos.ravel())[::-1]
    csum = np.cumsum(v)
    need = share * total
    i = int(np.searchsorted(csum, need * (1 - 1e-12)))  # first pixel that reaches it
    i = min(i, v.size - 1)
    before = float(csum[i - 1]) if i > 0 else 0.0
    n = i + min(1.0, max(0.0, (need - before) / v[i]))
    return float(n / pos.size)


def compactness(cam: np.ndarray, share: float = 0.9) -> float:
    """How concentrated the map is: ``1 − A(share)`` (see :func:`mass_area`).

    1 when all mass sits on one pixel, ``1 − share`` for a uniform map. It measures concentration,
    not position: combine it with :func:`box_mass` to ask "small *and* on the object".
    """
    return 1.0 - mass_area(cam, share)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.arange(v.size, dtype=np.float64)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (ties get average ranks).

    ``ρ = pearson(rank(pos_a), rank(pos_b))``. Two constant maps are identical (1.0); one constant
    and one not share nothing (0.0). Maps of different shapes raise (resize one first).
    """
    pa, pb = positive(a), positive(b)
    if pa.shape != pb.shape:
        raise ExpectationError(f"maps of different shapes {pa.shape} and {pb.shape}; bring them to one grid first")
    ra, rb = _average_ranks(pa.ravel()), _average_ranks(pb.ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    na, nb = float(np.sqrt((ra * ra).sum())), float(np.sqrt((rb * rb).sum()))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.clip((ra * rb).sum() / (na * nb), -1.0, 1.0))


def top_region_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """IoU of the top ``fraction`` of pixels of two maps of the same shape.

    ``IoU = Σ_p min(s^a_p, s^b_p) / Σ_p max(s^a_p, s^b_p)`` with ``s`` the top-``k`` selection
    weights (:func:`top_k_weights`, ``k = fraction · H·W``): the plain IoU of the two top regions
    when there are no ties, and order-free when there are.
    """
    pa, pb = positive(a), positive(b)
    if pa.shape != pb.shape:
        raise ExpectationError(f"maps of different shapes {pa.shape} and {pb.shape}; bring them to one grid first")
    if not 0.0 < fraction <= 1.0:
        raise ExpectationError(f"`fraction` must be in (0, 1], got {fraction!r}")
    k = max(fraction * pa.size, 1.0)
    sa, sb = top_k_weights(pa, k), top_k_weights(pb, k)
    return float(np.minimum(sa, sb).sum() / np.maximum(sa, sb).sum())
