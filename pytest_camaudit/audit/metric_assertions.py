"""Assertions for the metric pack (:mod:`pytest_camaudit.metrics`, :mod:`.perturbation`).

Like :mod:`.assertions`, each takes an :class:`~pytest_camaudit.audit.auditor.AuditCase`
(also available as a method of the case), records its verdict and fails with "expected …, got …"::

    case = camaudit.audit("scene.png")
    tri = case.assert_detected("triangle", box=[10, 12, 60, 58])
    case.assert_pointing_game(tri, tolerance=2)
    case.assert_forbidden_mass(watermark_box, at_most=0.05)
    case.assert_deletion_auc(tri, at_most=0.4)

**Which map.** ``method`` defaults to the run's ``--camaudit-method``. A per-box method explains
``explain`` (default: the target when it is a detection); a class-agnostic one (EigenCAM) is the
same map whatever the target. ``target`` is the region the metric looks at: a detection (its box)
or a box ``[x1, y1, x2, y2]`` such as a ground-truth box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import metrics as M
from ..datatypes import CamMap, Curve, Detection
from ..errors import ExpectationError
from .assertions import empty_map
from .regions import ObjectRegion, outline_weights
from .verdicts import detection_arg, fmt_box, names_the_case, threshold, validate_box, verdict

if TYPE_CHECKING:
    from .casebase import CaseBase

Target = Detection | Sequence[float]
"""What a metric looks at: a detection (its box) or a box ``[x1, y1, x2, y2]``."""


def _resolve(case: CaseBase, target: Target, explain: Detection | None, method: str | None) -> tuple[CamMap, Detection | None, tuple[float, ...], str]:
    """``(map, explained detection, box, subject)`` for an assertion on ``target``."""
    if isinstance(target, Detection):
        box: tuple[float, ...] = target.box
        explain = target if explain is None else explain
        subject = target.describe()
    else:
        box = validate_box(target, case.size)
        subject = f"box {fmt_box(box)}"
    if explain is not None and not isinstance(explain, Detection):
        raise ExpectationError(f"`explain` must be a detection (what assert_detected returns), got {type(explain).__name__}")
    return case.cam(explain, method=method), explain, box, subject


def _r(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 4)


def _empty(cam: CamMap) -> str:
    return empty_map(cam.method, cam.degenerate)


def _label(detection: Detection | None) -> str | None:
    return detection.label_name if detection is not None else None


@names_the_case("box_mass")
def assert_box_mass(case: CaseBase, box: Sequence[float], at_least: float, *, explain: Detection | None = None, method: str | None = None,
                    region: ObjectRegion | None = None) -> float:
    """Assert ``mass = Σ_{box} pos / Σ pos ≥ at_least`` inside a *given* box (e.g. ground truth) of
    the map explaining ``explain`` — :func:`~pytest_camaudit.assertions.assert_cam_mass` measures
    inside the explained detection's own box instead. With ``region`` (the object's mask or
    outline), the mass inside that region is judged instead (``Σ pos · w / Σ pos``,
    :func:`pytest_camaudit.metrics.region_mass`) and the box is what the record and the figure
    show. Returns the mass."""
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    cam, det, b, subject = _resolve(case, box, explain, method)
    if region is None:
        mass, chance, where = M.box_mass(cam.values, b), M.box_area_fraction(cam.values.shape, b), f"inside {subject}"
    else:
        weights = outline_weights(case, region)
        mass, chance, where = M.region_mass(cam.values, weights), float(weights.mean()), f"inside the outline of the object at {subject}"
    who = f" explaining {det.describe()}" if det is not None and cam.target is not None else ""
    got = _empty(cam) if math.isnan(mass) else f"{mass:.3f} (a uniform map would give {chance:.3f})"
    measured: dict[str, float | str | None] = {"mass": _r(mass), "chance": round(chance, 4)}
    if region is not None:
        measured["region"] = "outline"
    verdict(case, "box_mass", not math.isnan(mass) and mass >= thr,
            f"{cam.method} mass {mass:.3f} >= {thr:.2f} {where}",
            f"expected {cam.method} mass >= {thr:.2f} {where}{who}, got {got}",
            detection=det, label=_label(det), box=b, measured=measured, thresholds={"mass": thr}, figure=case.figure_for(cam, b))
    return mass


@names_the_case("pointing_game")
def assert_pointing_game(case: CaseBase, target: Target, *, tolerance: float = 0.0, explain: Detection | None = None,
                         method: str | None = None) -> float:
    """Assert that the map's maximum lies within ``tolerance`` pixels of the target's box.

    See :func:`pytest_camaudit.metrics.peak_distance`: distance from the pixel centre, and when
    several pixels tie for the maximum *every* one must be within ``tolerance``. Returns the
    distance (0 inside the box).
    """
    __tracebackhide__ = True
    tol = threshold("tolerance", tolerance, 0.0, 1e6)
    cam, det, box, subject = _resolve(case, target, explain, method)
    dist, (px, py) = M.peak_distance(cam.values, box)
    ties = int((cam.values == cam.values.max()).sum())
    tie_txt = f"; {ties} pixels share the maximum, the farthest counts" if ties > 1 else ""
    got = _empty(cam) if math.isnan(dist) else f"its peak at ({px}, {py}), {dist:.1f} px away{tie_txt}"
    verdict(case, "pointing_game", dist <= tol,
            f"{cam.method} peak at ({px}, {py}) within {tol:g} px of {subject}",
            f"expected the {cam.method} peak within {tol:g} px of {subject}, got {got}",
            detection=det, label=_label(det), box=box, measured={"distance": _r(dist), "peak_x": px, "peak_y": py},
            thresholds={"distance": tol}, figure=case.figure_for(cam, box))
    return dist


@names_the_case("top_k_intersection")
def assert_top_k_intersection(case: CaseBase, target: Target, k: float, at_least: float, *, explain: Detection | None = None,
                              method: str | None = None) -> float:
    """Assert that at least ``at_least`` of the map's top ``k`` pixels lie in the target's box
    (:func:`pytest_camaudit.metrics.top_k_intersection`; tied pixels share places). Returns the share."""
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    cam, det, box, subject = _resolve(case, target, explain, method)
    n = cam.values.size
    if not (isinstance(k, (int, float)) and 0 < k <= n):
        raise ExpectationError(f"`k` must be a number of pixels in (0, {n}] for this {case.size[0]}x{case.size[1]} image, got {k!r}")
    share = M.top_k_intersection(cam.values, box, float(k))
    chance = M.box_area_fraction(cam.values.shape, box)
    got = _empty(cam) if math.isnan(share) else f"{share:.3f} (a uniform map would give {chance:.3f})"
    verdict(case, "top_k_intersection", not math.isnan(share) and share >= thr,
            f"{share:.3f} of the top {k:g} {cam.method} pixels inside {subject}",
            f"expected >= {thr:.2f} of the top {k:g} {cam.method} pixels inside {subject}, got {got}",
            detection=det, label=_label(det), box=box, measured={"share": _r(share), "chance": round(chance, 4)},
            thresholds={"share": thr, "k": float(k)}, figure=case.figure_for(cam, box))
    return share


@names_the_case("rank_accuracy")
def assert_rank_accuracy(case: CaseBase, target: Target, at_least: float, *, explain: Detection | None = None,
                         method: str | None = None) -> float:
    """Assert relevance rank accuracy ≥ ``at_least``: of as many top pixels as the box has, the share
    inside it (:func:`pytest_camaudit.metrics.relevance_rank_accuracy`). Returns it."""
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    cam, det, box, subject = _resolve(case, target, explain, method)
    rra = M.relevance_rank_accuracy(cam.values, box)
    chance = M.box_area_fraction(cam.values.shape, box)
    area = float(M.box_weights(cam.values.shape, box).sum())
    got = _empty(cam) if math.isnan(rra) else f"{rra:.3f} (a uniform map would give {chance:.3f})"
    verdict(case, "rank_accuracy", not math.isnan(rra) and rra >= thr,
            f"{cam.method} rank accuracy {rra:.3f} >= {thr:.2f} for {subject}",
            f"expected {cam.method} rank accuracy >= {thr:.2f} for {subject} (top {area:.0f} pixels), got {got}",
            detection=det, label=_label(det), box=box, measured={"rank_accuracy": _r(rra), "chance": round(chance, 4)},
            thresholds={"rank_accuracy": thr}, figure=case.figure_for(cam, box))
    return rra


def _other_boxes(case: CaseBase, det: Detection | None, box: Sequence[float]) -> list[list[float]]:
    """Expected boxes of the case except the target's own (its matched expectation, or an equal box)."""
    own = case.matched.get(det.index) if det is not None else None
    out = []
    for i, e in enumerate(case.expected):
        b = e.get("box")
        if b is None or i == own or all(abs(float(u) - float(v)) < 1e-6 for u, v in zip(b, box, strict=True)):
            continue
        out.append([float(v) for v in b])
    return out


@names_the_case("odi")
def assert_odi(case: CaseBase, target: Target, at_most: float, *, others: Sequence[Sequence[float]] | None = None,
               explain: Detection | None = None, method: str | None = None) -> float:
    """Assert that at most ``at_most`` of the map's mass lies on *other* objects
    (:func:`pytest_camaudit.metrics.odi`). ``others`` defaults to the case's other expected boxes
    (from ``assert_detected`` / COCO annotations). Returns the ODI."""
    __tracebackhide__ = True
    thr = threshold("at_most", at_most)
    cam, det, box, subject = _resolve(case, target, explain, method)
    own = target if isinstance(target, Detection) else None
    other = [list(validate_box(b, case.size, "other box")) for b in others] if others is not None else _other_boxes(case, own, box)
    value = M.odi(cam.values, box, other)
    got = _empty(cam) if math.isnan(value) else f"{value:.3f} on {len(other)} other object(s)"
    verdict(case, "odi", not math.isnan(value) and value <= thr,
            f"{cam.method} mass on other objects {value:.3f} <= {thr:.2f} for {subject}",
            f"expected at most {thr:.2f} of the {cam.method} mass on objects other than {subject}, got {got}",
            detection=det, label=_label(det), box=box, measured={"odi": _r(value), "others": len(other)},
            thresholds={"odi": thr}, figure=case.figure_for(cam, box))
    return value


@names_the_case("compactness")
def assert_compactness(case: CaseBase, at_least: float, *, share: float = 0.9, explain: Detection | None = None,
                       method: str | None = None) -> float:
    """Assert ``compactness = 1 − (smallest area share holding `share` of the mass) ≥ at_least``
    (:func:`pytest_camaudit.metrics.compactness`). Returns it."""
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    q = threshold("share", share)
    cam = case.cam(explain, method=method)
    value = M.compactness(cam.values, q) if q > 0 else float("nan")
    got = _empty(cam) if math.isnan(value) else f"{value:.3f}: {1 - value:.1%} of the image holds {q:.0%} of the mass"
    verdict(case, "compactness", not math.isnan(value) and value >= thr,
            f"{cam.method} compactness {value:.3f} >= {thr:.2f}",
            f"expected {cam.method} compactness >= {thr:.2f} (at most {1 - thr:.1%} of the image holding {q:.0%} of the mass), got {got}",
            detection=explain, label=_label(explain), box=explain.box if explain is not None else None, measured={"compactness": _r(value)},
            thresholds={"compactness": thr, "share": q}, figure=case.figure_for(cam, explain.box if explain is not None else None))
    return value


@names_the_case("forbidden_mass")
def assert_forbidden_mass(case: CaseBase, region: M.Region, at_most: float, *, explain: Detection | None = None,
                          method: str | None = None, what: str = "the forbidden region") -> float:
    """Assert that at most ``at_most`` of the map's mass lies on a region the model must not use —
    a watermark, a known spurious cue — given as a box, a list of boxes or an ``[H, W]`` mask at
    the image's size (:func:`pytest_camaudit.metrics.region_mass`). Returns the mass."""
    __tracebackhide__ = True
    thr = threshold("at_most", at_most)
    cam = case.cam(explain, method=method)
    boxes: list[list[float]] = []
    if not M.is_mask(region, cam.values.shape):
        try:
            arr = np.asarray(region, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExpectationError(f"{what} must be a box [x1, y1, x2, y2], a list of boxes or an [H, W] mask, got {region!r}"[:300]) from None
        rows = [arr] if arr.ndim == 1 and arr.size else list(arr) if arr.ndim == 2 else []
        if arr.ndim not in (1, 2):
            raise ExpectationError(f"{what} must be a box, a list of boxes or an [H, W] mask, got an array of shape {arr.shape}")
        boxes = [list(validate_box(b.tolist(), case.size, f"box of {what}")) for b in rows]
        region = boxes
    mass = M.region_mass(cam.values, region)
    area = float(M.region_weights(cam.values.shape, region).mean())
    where = ", ".join(fmt_box(b) for b in boxes[:4]) + (" …" if len(boxes) > 4 else "") if boxes else "mask"
    got = _empty(cam) if math.isnan(mass) else f"{mass:.3f} (the region is {area:.1%} of the image)"
    verdict(case, "forbidden_mass", not math.isnan(mass) and mass <= thr,
            f"{cam.method} mass on {what} {mass:.3f} <= {thr:.2f}",
            f"expected at most {thr:.2f} of the {cam.method} mass on {what} ({where}), got {got}",
            detection=explain, label=_label(explain), box=boxes[0] if len(boxes) == 1 else None, measured={"mass": _r(mass), "area": round(area, 4)},
            thresholds={"mass": thr}, figure=case.figure_for(cam, boxes[0] if len(boxes) == 1 else None))
    return mass


def _curve(case: CaseBase, detection: Detection, mode: str, steps: int, method: str | None, fill: str) -> tuple[Curve, CamMap]:
    from .perturbation import blurred, detection_scorer, perturbation_curve

    detection = detection_arg(detection, f"{mode} AUC (it tracks a detection's score)")
    cam = case.cam(detection, method=method)
    engine = case.engine
    if fill not in ("mean", "blur"):
        raise ExpectationError(f"`fill` must be 'mean' (the detector's normalisation mean) or 'blur', got {fill!r}")
    base = engine.fill_colour() if fill == "mean" else blurred(case.image.pixels)
    curve = perturbation_curve(case.image.pixels, cam.values, detection_scorer(engine, detection), mode, steps, base)
    return curve, cam


def _curve_txt(c: Curve) -> str:
    idx = sorted({0, len(c.scores) // 4, len(c.scores) // 2, 3 * len(c.scores) // 4, len(c.scores) - 1})
    return ", ".join(f"{c.fractions[i]:.0%}: {c.scores[i]:.2f}" for i in idx)


@names_the_case("deletion_auc")
def assert_deletion_auc(case: CaseBase, detection: Detection, at_most: float, *, steps: int = 16, method: str | None = None,
                        fill: str = "mean") -> Curve:
    """Assert that deleting pixels by decreasing CAM value destroys ``detection`` fast: the area under
    its score curve is at most ``at_most`` (:mod:`pytest_camaudit.perturbation`; one batched
    detector pass over ``steps + 1`` images). Removed pixels take the detector's normalisation mean
    (``fill="mean"``) or a blurred copy of the image (``fill="blur"``: a flat-coloured object replaced
    by a flat colour keeps its silhouette, a blurred one does not). Returns the
    :class:`~pytest_camaudit.perturbation.Curve`."""
    __tracebackhide__ = True
    thr = threshold("at_most", at_most)
    curve, cam = _curve(case, detection, "deletion", steps, method, fill)
    verdict(case, "deletion_auc", curve.auc <= thr,
            f"deletion AUC {curve.auc:.3f} <= {thr:.2f} for {detection.describe()}",
            f"expected deletion AUC <= {thr:.2f} for {detection.describe()} (pixels removed by decreasing {cam.method}), "
            f"got {curve.auc:.3f}; score after removing {_curve_txt(curve)}",
            detection=detection, label=detection.label_name, box=detection.box, measured={"auc": round(curve.auc, 4), "curve": " ".join(f"{s:.3f}" for s in curve.scores)},
            thresholds={"auc": thr}, figure=case.figure_for(cam, detection.box))
    return curve


@names_the_case("insertion_auc")
def assert_insertion_auc(case: CaseBase, detection: Detection, at_least: float, *, steps: int = 16, method: str | None = None,
                         fill: str = "mean") -> Curve:
    """Assert that revealing pixels by decreasing CAM value (from a neutral image) brings ``detection``
    back fast: the area under its score curve is at least ``at_least`` (``fill`` as for deletion:
    the image starts as that). Returns the curve."""
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    curve, cam = _curve(case, detection, "insertion", steps, method, fill)
    verdict(case, "insertion_auc", curve.auc >= thr,
            f"insertion AUC {curve.auc:.3f} >= {thr:.2f} for {detection.describe()}",
            f"expected insertion AUC >= {thr:.2f} for {detection.describe()} (pixels revealed by decreasing {cam.method}), "
            f"got {curve.auc:.3f}; score after revealing {_curve_txt(curve)}",
            detection=detection, label=detection.label_name, box=detection.box, measured={"auc": round(curve.auc, 4), "curve": " ".join(f"{s:.3f}" for s in curve.scores)},
            thresholds={"auc": thr}, figure=case.figure_for(cam, detection.box))
    return curve
