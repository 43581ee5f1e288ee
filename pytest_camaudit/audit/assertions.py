"""The audit assertions. Each records its verdict on the case and fails with "expected …, got …".

They take an :class:`~pytest_camaudit.audit.auditor.AuditCase` (what ``camaudit.audit(image)``
returns) and are also its methods::

    case = camaudit.audit("scene.png")
    tri = assert_detected(case, "triangle", box=[10, 12, 60, 58])   # == case.assert_detected(...)
    assert_cam_mass(case, tri, at_least=0.4)
    assert_survives_without_context(case, tri, max_drop=0.3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..datatypes import Box, ContextResult, Detection
from ..metrics import box_area_fraction, box_mass, region_mass
from .regions import ObjectRegion, outline_weights
from .verdicts import detection_arg, fail, fmt_box, iou, names_the_case, threshold, validate_box, verdict

if TYPE_CHECKING:
    from .casebase import CaseBase


def _top(detections: Sequence[Detection], k: int = 5) -> str:
    if not detections:
        return "no detections at all"
    return "; ".join(d.describe() for d in detections[:k])


def _best_match(case: CaseBase, cls: int, thr: float, exp_box: Box | None, iou_thr: float) -> Detection | None:
    """The not-yet-matched detection of class ``cls`` above ``thr``: highest IoU with ``exp_box`` (≥ ``iou_thr``), else highest score."""
    cands = [d for d in case.detections if d.label == cls and d.score >= thr and d.index not in case.matched]
    if exp_box is None:
        return max(cands, key=lambda d: d.score, default=None)
    scored = [(iou(d.box, exp_box), d) for d in cands]
    best = max(((v, d) for v, d in scored if v >= iou_thr), key=lambda t: (t[0], t[1].score), default=None)
    return best[1] if best else None


def _explain_miss(case: CaseBase, cls: int, name: str, exp_box: Box | None) -> tuple[str, dict[str, float | str | None]]:
    """What was there instead: same-class detections near the box whatever their score, or any overlap."""
    measured: dict[str, float | str | None] = {}
    if exp_box is not None:
        near = sorted((d for d in case.detections if iou(d.box, exp_box) >= 0.1), key=lambda d: -iou(d.box, exp_box))
        near_txt = "; ".join(f"{d.describe()} (IoU {iou(d.box, exp_box):.2f}{', already matched' if d.index in case.matched else ''})"
                             for d in near[:5])
        same = [d for d in near if d.label == cls]
        if same:
            measured = {"best_score": round(same[0].score, 4), "best_iou": round(iou(same[0].box, exp_box), 4)}
        return (f"got {near_txt}" if near else "got nothing overlapping that box"), measured
    same = [d for d in case.detections if d.label == cls]
    if same:
        measured["best_score"] = round(same[0].score, 4)
    return (f"got best {name} score {same[0].score:.3f}" if same else f"got no {name} detection at any score"), measured


@names_the_case("detected")
def assert_detected(
    case: CaseBase,
    label: str | int,
    box: Sequence[float] | None = None,
    *,
    score_threshold: float | None = None,
    iou_threshold: float = 0.5,
) -> Detection:
    """Assert that ``label`` is detected with score ≥ ``score_threshold`` (default: the run's
    ``--camaudit-score-threshold``), at IoU ≥ ``iou_threshold`` with ``box`` when given.

    A detection matched by an earlier ``assert_detected`` on the same case is not matched again,
    so two expected triangles need two detected ones. Among candidates the highest IoU wins (the
    highest score without a box).

    Returns:
        The matched :class:`~pytest_camaudit.datatypes.Detection`.
    """
    __tracebackhide__ = True
    cls = case.detector.label_index(label)
    name = case.detector.label_name(cls)
    thr = threshold("score_threshold", case.score_threshold if score_threshold is None else score_threshold)
    iou_thr = threshold("iou_threshold", iou_threshold)
    exp_box = validate_box(box, case.size, "expected box") if box is not None else None
    case.expected.append({"label": name, "box": list(exp_box) if exp_box else None})
    thresholds = {"score": thr, "iou": iou_thr if exp_box else None}
    match = _best_match(case, cls, thr, exp_box, iou_thr)
    if match is not None:
        measured: dict[str, float | str | None] = {"score": round(match.score, 4)}
        if exp_box is not None:
            measured["iou"] = round(iou(match.box, exp_box), 4)
        case.matched[match.index] = len(case.expected) - 1
        verdict(case, "detected", True, f"{name} detected: {match.describe()}", "", detection=match, label=name,
                box=match.box, measured=measured, thresholds=thresholds)
        return match
    got, measured = _explain_miss(case, cls, name, exp_box)
    where = f" at IoU >= {iou_thr:.2f} with {fmt_box(exp_box)}" if exp_box else ""
    fail(case, "detected", f"expected {name} with score >= {thr:.2f}{where}, {got}.\n  top detections: {_top(case.detections)}",
         label=name, box=exp_box, measured=measured, thresholds=thresholds)


def resolve_target(case: CaseBase, target: Detection | Sequence[float]) -> tuple[Detection | None, Box]:
    """``(detection or None, box)`` of a target given as a detection or a box ``[x1, y1, x2, y2]``."""
    if isinstance(target, Detection):
        return target, target.box
    return None, validate_box(target, case.size)


def empty_map(method: str, degenerate: bool) -> str:
    """Why a map gives NaN: it has no positive mass."""
    return f"NaN: the {method} map is all zero ({'degenerate activations' if degenerate else 'no positive evidence'})"


@names_the_case("cam_mass")
def assert_cam_mass(case: CaseBase, target: Detection | Sequence[float], at_least: float, *, method: str | None = None,
                    region: ObjectRegion | None = None) -> float:
    """Assert that the CAM mass inside a box is at least ``at_least``.

    ``mass = Σ_{box} max(cam, 0) / Σ_{image} max(cam, 0)`` (:func:`pytest_camaudit.metrics.box_mass`)
    on the map of ``method`` (default: the run's ``--camaudit-method``). A per-box method
    explains ``target`` when it is a detection; a class-agnostic one (EigenCAM) is the same map
    for every box. With ``region`` — the object's ``[H, W]`` mask (e.g. a Mask R-CNN's own mask,
    :meth:`~pytest_camaudit.audit.casebase.CaseBase.predicted_mask`) or its annotated outline — the mass
    inside that region is measured instead (:func:`pytest_camaudit.metrics.region_mass`): for a thin,
    rotated or hollow object most of its box is background. An all-zero map gives NaN and fails.

    Returns:
        The measured mass.
    """
    __tracebackhide__ = True
    thr = threshold("at_least", at_least)
    detection, box = resolve_target(case, target)
    cam = case.cam(detection, method=method)
    if region is not None:
        weights = outline_weights(case, region)
        mass, chance = region_mass(cam.values, weights), float(weights.mean())
    else:
        mass, chance = box_mass(cam.values, box), box_area_fraction(cam.values.shape, box)
    subject = ("the outline of " if region is not None else "") + (detection.describe() if detection else f"box {fmt_box(box)}")
    if math.isnan(mass):
        why = "degenerate activations" if cam.degenerate else "no positive evidence"
        got = f"NaN: the CAM is all zero ({why}), so there is nothing to measure."
    else:
        got = f"{mass:.3f} (a uniform map would give {chance:.3f})."
    verdict(case, "cam_mass", not math.isnan(mass) and mass >= thr,
            f"{cam.method} mass {mass:.3f} >= {thr:.2f} inside {subject}",
            f"expected {cam.method} mass >= {thr:.2f} inside {subject}, got {got}",
            detection=detection, box=box, measured={"mass": None if math.isnan(mass) else round(mass, 4), "chance": round(chance, 4),
                                                    **({"region": "outline"} if region is not None else {})},
            thresholds={"mass": thr}, figure=case.figure_for(cam, box))
    return mass


@names_the_case("context")
def assert_survives_without_context(case: CaseBase, detection: Detection, max_drop: float = 0.3, *, margin: float = 0.05) -> ContextResult:
    """Assert that ``detection`` keeps its score when everything outside its box is removed.

    The image is re-run with all pixels outside the box (grown by ``margin`` × its width and
    height on each side) set to the detector's neutral colour (its normalisation mean); the
    detection's score there is the best same-label detection at IoU ≥ 0.5 with its box (0 when
    none). The score may drop by at most ``max_drop``. Each checked box costs one extra forward
    (one image at a time, so the score does not depend on which boxes were checked together);
    results are cached per detection and margin.

    Returns:
        The :class:`~pytest_camaudit.datatypes.ContextResult`.
    """
    __tracebackhide__ = True
    detection = detection_arg(detection, "assert_survives_without_context")
    limit = threshold("max_drop", max_drop)
    margin = threshold("margin", margin, 0.0, 10.0)
    result = case.context(detection, margin)
    subject = detection.describe()
    verdict(case, "context", result.drop <= limit,
            f"{subject} keeps {result.score_without:.3f} without context (drop {result.drop:.3f} <= {limit:.2f})",
            f"expected {subject} to survive without context (score drop <= {limit:.2f}), got {result.score_with:.3f} -> "
            f"{result.score_without:.3f} (drop {result.drop:.3f}) once everything outside the box (margin {margin:.0%}) was "
            "filled: the detection depends on what lies outside the object.",
            detection=detection, box=detection.box,
            measured={"score_with": round(result.score_with, 4), "score_without": round(result.score_without, 4), "drop": round(result.drop, 4)},
            thresholds={"drop": limit}, figure=case.context_figure(result))
    return result


def cam_values(case: CaseBase, detection: Detection | None = None, method: str | None = None) -> np.ndarray:
    """The ``float32 [H, W]`` map (max 1) used by :func:`assert_cam_mass`, for custom checks."""
    return case.cam(detection, method=method).values
