"""The audit assertions. Each records its verdict on the case and fails with "expected …, got …".

They take an :class:`~pytest_camaudit.auditor.AuditCase` (what ``camaudit.audit(image)`` returns)
and are also its methods::

    case = camaudit.audit("scene.png")
    tri = assert_detected(case, "triangle", box=[10, 12, 60, 58])   # == case.assert_detected(...)
    assert_cam_mass(case, tri, at_least=0.4)
    assert_survives_without_context(case, tri, max_drop=0.3)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .errors import ExpectationError
from .records import CheckRecord

if TYPE_CHECKING:
    from .auditor import AuditCase
    from .engine import ContextResult, Detection


def _fail(message: str, check: CheckRecord) -> AssertionError:
    """A plain ``AssertionError`` (pytest shows ``AssertionError: expected …``) carrying the check."""
    err = AssertionError(message)
    err.camaudit_check = check  # type: ignore[attr-defined]
    return err


_F = TypeVar("_F", bound=Callable[..., Any])


def _names_the_case(kind: str) -> Callable[[_F], _F]:
    """An :class:`ExpectationError` from the wrapped assertion names the image and is recorded.

    A malformed expectation (unknown class, NaN threshold, box outside the image…) is the test's
    mistake, not the model's; the error says which image it was about and the case card in the
    report shows it as a failed ``kind`` check.
    """

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(case: AuditCase, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            try:
                return fn(case, *args, **kwargs)
            except ExpectationError as exc:
                message = f"{exc}\n  image: {case.name}"
                case.record(CheckRecord(kind, False, f"invalid expectation: {message}"))
                raise ExpectationError(message) from None

        return wrapper  # type: ignore[return-value]

    return deco


def _fmt_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in box) + "]"


def validate_threshold(name: str, value: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """A finite number in ``[lo, hi]``, or an :class:`ExpectationError` naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ExpectationError(f"`{name}` must be a number in [{lo}, {hi}], got {value!r}") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ExpectationError(f"`{name}` must be a number in [{lo}, {hi}], got {value!r}")
    return x


def validate_box(box: Sequence[float], size: tuple[int, int], what: str = "box") -> tuple[float, float, float, float]:
    """Check ``[x1, y1, x2, y2]`` against an image of ``size = (width, height)``.

    Raises:
        ExpectationError: wrong length, non-finite, degenerate (``x2 <= x1`` or ``y2 <= y1``), or
            not inside the image (a tolerance of one pixel is allowed, then it is clipped).
    """
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ExpectationError(f"{what} must be 4 numbers [x1, y1, x2, y2], got {box!r}") from None
    if len(vals) != 4:
        raise ExpectationError(f"{what} must be 4 numbers [x1, y1, x2, y2], got {len(vals)} values: {box!r}")
    if not all(math.isfinite(v) for v in vals):
        raise ExpectationError(f"{what} {box!r} has a NaN or infinite coordinate")
    x1, y1, x2, y2 = vals
    if x2 <= x1 or y2 <= y1:
        raise ExpectationError(
            f"{what} {_fmt_box(vals)} is degenerate (needs x1 < x2 and y1 < y2, in [x1, y1, x2, y2] order; "
            "COCO [x, y, w, h] boxes must be converted)"
        )
    w, h = size
    if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
        raise ExpectationError(f"{what} {_fmt_box(vals)} lies outside the {w}x{h} image; fix the annotation")
    return (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _top(detections: Sequence[Detection], k: int = 5) -> str:
    if not detections:
        return "no detections at all"
    return "; ".join(d.describe() for d in detections[:k])


@_names_the_case("detected")
def assert_detected(
    case: AuditCase,
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
        The matched :class:`~pytest_camaudit.engine.Detection`.
    """
    __tracebackhide__ = True
    cls = case.detector.label_index(label)
    name = case.detector.label_name(cls)
    thr = validate_threshold("score_threshold", case.score_threshold if score_threshold is None else score_threshold)
    iou_thr = validate_threshold("iou_threshold", iou_threshold)
    exp_box = validate_box(box, case.size, "expected box") if box is not None else None
    case.expected.append({"label": name, "box": list(exp_box) if exp_box else None})

    def ok(d: Detection) -> bool:
        return d.label == cls and d.score >= thr and d.index not in case.matched

    cands = [d for d in case.detections if ok(d)]
    if exp_box is not None:
        scored = [(iou(d.box, exp_box), d) for d in cands]
        scored = [(v, d) for v, d in scored if v >= iou_thr]
        best = max(scored, key=lambda t: (t[0], t[1].score), default=None)
        match = best[1] if best else None
    else:
        match = max(cands, key=lambda d: d.score, default=None)
    where = f" at IoU >= {iou_thr:.2f} with {_fmt_box(exp_box)}" if exp_box else ""
    measured: dict[str, float | str | None] = {}
    if match is not None:
        measured = {"score": round(match.score, 4)}
        if exp_box is not None:
            measured["iou"] = round(iou(match.box, exp_box), 4)
        case.matched[match.index] = len(case.expected) - 1
        msg = f"{name} detected: {match.describe()}"
        case.record(CheckRecord("detected", True, msg, name, list(match.box), match.index, measured, {"score": thr, "iou": iou_thr if exp_box else None}))
        return match
    # explain the miss: same-class detections near the box whatever their score, or any overlap
    if exp_box is not None:
        near = sorted(
            (d for d in case.detections if iou(d.box, exp_box) >= 0.1),
            key=lambda d: -iou(d.box, exp_box),
        )
        near_txt = "; ".join(f"{d.describe()} (IoU {iou(d.box, exp_box):.2f}{', already matched' if d.index in case.matched else ''})" for d in near[:5])
        got = f"got {near_txt}" if near else "got nothing overlapping that box"
        same = [d for d in near if d.label == cls]
        if same:
            measured["best_score"] = round(same[0].score, 4)
            measured["best_iou"] = round(iou(same[0].box, exp_box), 4)
    else:
        same = [d for d in case.detections if d.label == cls]
        got = f"got best {name} score {same[0].score:.3f}" if same else f"got no {name} detection at any score"
        if same:
            measured["best_score"] = round(same[0].score, 4)
    msg = (
        f"expected {name} with score >= {thr:.2f}{where}, {got}.\n"
        f"  top detections: {_top(case.detections)}\n  image: {case.name}"
    )
    check = CheckRecord("detected", False, msg, name, list(exp_box) if exp_box else None, None, measured, {"score": thr, "iou": iou_thr if exp_box else None})
    case.record(check)
    raise _fail(msg, check)


def _resolve_target(case: AuditCase, target: Detection | Sequence[float]) -> tuple[Detection | None, tuple[float, float, float, float]]:
    from .engine import Detection

    if isinstance(target, Detection):
        return target, target.box
    return None, validate_box(target, case.size)


@_names_the_case("cam_mass")
def assert_cam_mass(
    case: AuditCase,
    target: Detection | Sequence[float],
    at_least: float,
    *,
    method: str | None = None,
) -> float:
    """Assert that the CAM mass inside a box is at least ``at_least``.

    ``mass = Σ_{box} max(cam, 0) / Σ_{image} max(cam, 0)`` (:func:`pytest_camaudit.metrics.box_mass`)
    on the map of ``method`` (default: the run's ``--camaudit-method``). A per-box method
    explains ``target`` when it is a detection; a class-agnostic one (EigenCAM) is the same map
    for every box. An all-zero map gives NaN and fails.

    Returns:
        The measured mass.
    """
    __tracebackhide__ = True
    from .metrics import box_area_fraction, box_mass

    threshold = validate_threshold("at_least", at_least)
    detection, box = _resolve_target(case, target)
    cam = case.cam(detection, method=method, box=box)
    mass = box_mass(cam.values, box)
    chance = box_area_fraction(cam.values.shape, box)
    subject = detection.describe() if detection else f"box {_fmt_box(box)}"
    label = detection.label_name if detection else None
    figure = case.figure_for(cam, box)
    measured = {"mass": None if math.isnan(mass) else round(mass, 4), "chance": round(chance, 4)}
    if math.isnan(mass):
        msg = (
            f"expected {cam.method} mass >= {threshold:.2f} inside {subject}, got NaN: the CAM is all zero "
            f"({'degenerate activations' if cam.degenerate else 'no positive evidence'}), so there is nothing to measure.\n"
            f"  image: {case.name}"
        )
        passed = False
    else:
        passed = mass >= threshold
        msg = (
            f"expected {cam.method} mass >= {threshold:.2f} inside {subject}, got {mass:.3f} "
            f"(a uniform map would give {chance:.3f}).\n  image: {case.name}"
        )
    check = CheckRecord("cam_mass", passed, msg if not passed else f"{cam.method} mass {mass:.3f} >= {threshold:.2f} inside {subject}",
                        label, list(box), detection.index if detection else None, measured, {"mass": threshold}, figure)
    case.record(check)
    if not passed:
        raise _fail(msg, check)
    return mass


@_names_the_case("context")
def assert_survives_without_context(
    case: AuditCase,
    detection: Detection,
    max_drop: float = 0.3,
    *,
    margin: float = 0.05,
) -> ContextResult:
    """Assert that ``detection`` keeps its score when everything outside its box is removed.

    The image is re-run with all pixels outside the box (grown by ``margin`` × its width and
    height on each side) set to the detector's neutral colour (its normalisation mean); the
    detection's score there is the best same-label detection at IoU ≥ 0.5 with its box (0 when
    none). The score may drop by at most ``max_drop``. Each checked box costs one extra forward
    (one image at a time, so the score does not depend on which boxes were checked together);
    results are cached per detection and margin.

    Returns:
        The :class:`~pytest_camaudit.engine.ContextResult`.
    """
    __tracebackhide__ = True
    from .engine import Detection

    if not isinstance(detection, Detection):
        raise ExpectationError(
            f"assert_survives_without_context needs a detection (what assert_detected returns), got {type(detection).__name__}"
        )
    limit = validate_threshold("max_drop", max_drop)
    margin = validate_threshold("margin", margin, 0.0, 10.0)
    result = case.context(detection, margin)
    figure = case.context_figure(result)
    measured = {"score_with": round(result.score_with, 4), "score_without": round(result.score_without, 4), "drop": round(result.drop, 4)}
    passed = result.drop <= limit
    subject = detection.describe()
    if passed:
        msg = f"{subject} keeps {result.score_without:.3f} without context (drop {result.drop:.3f} <= {limit:.2f})"
    else:
        msg = (
            f"expected {subject} to survive without context (score drop <= {limit:.2f}), got "
            f"{result.score_with:.3f} -> {result.score_without:.3f} (drop {result.drop:.3f}) once everything "
            f"outside the box (margin {margin:.0%}) was filled: the detection depends on what lies outside the object.\n"
            f"  image: {case.name}"
        )
    check = CheckRecord("context", passed, msg, detection.label_name, list(detection.box), detection.index, measured, {"drop": limit}, figure)
    case.record(check)
    if not passed:
        raise _fail(msg, check)
    return result


def cam_values(case: AuditCase, detection: Detection | None = None, method: str | None = None) -> np.ndarray:
    """The ``float32 [H, W]`` map (max 1) used by :func:`assert_cam_mass`, for custom checks."""
    return case.cam(detection, method=method).values
