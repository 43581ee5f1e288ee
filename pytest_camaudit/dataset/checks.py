"""The checks of a data-driven case: every annotated object, then the baseline.

Every object is checked even after one fails (the dataset gates need all of them), then the
failures are raised together. Each object leaves a plain-data row on ``case.objects`` — what the
dataset gates (:mod:`.gates`) and baselines (:mod:`.baseline`) use,
and what travels to the pytest-xdist controller on the test report.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..audit.assertions import assert_detected
from ..audit.metric_assertions import assert_box_mass
from ..audit.verdicts import iou
from ..errors import CamauditError
from ..methods.registry import get_method
from ..metrics import box_mass
from .objects import Entry, ExpectedObject

if TYPE_CHECKING:
    from ..audit.case import AuditCase


def _best_score(case: AuditCase, obj: ExpectedObject) -> float | None:
    """Highest score of a detection of the object's class at IoU ≥ its threshold, at any score."""
    try:
        cls = case.detector.label_index(obj.label)
    except CamauditError:
        return None
    scores = [d.score for d in case.detections if d.label == cls and iou(d.box, obj.box) >= obj.thresholds.iou]
    return round(max(scores, default=0.0), 4)


def object_row(case: AuditCase, entry: Entry, obj: ExpectedObject, detection: Any, mass: float | None) -> dict[str, Any]:
    """The plain-data row of one checked object (JSON-compatible).

    ``has_outline: true`` is added when the annotation has an outline (polygons or a mask); rows of
    objects without one are as they were before outlines were read.
    """
    t = obj.thresholds
    row = {
        "case": entry.id,
        "key": entry.key,
        "annotation": obj.annotation_id,
        "label": obj.label,
        "box": [round(v, 2) for v in obj.box],
        "detected": detection is not None,
        "detection": detection.index if detection is not None else None,
        "score": _best_score(case, obj),
        "mass": None if mass is None or math.isnan(mass) else round(float(mass), 4),
        "score_threshold": t.score,
        "gate_recall": t.gate_recall,
        "gate_mass": list(t.gate_mass) if t.gate_mass else None,
    }
    if obj.outline is not None:
        row["has_outline"] = True
    return row


def _measured_mass(exc: AssertionError) -> float | None:
    """The mass a failed box-mass check measured (it travels on the error as ``camaudit_check``)."""
    check = getattr(exc, "camaudit_check", None)
    mass = check.measured.get("mass") if check is not None else None
    return float(mass) if isinstance(mass, (int, float)) else None


def check_entry(entry: Entry, case: AuditCase) -> list[dict[str, Any]]:
    """Check each annotated object of ``entry`` on ``case``, compare with the baseline, raise once.

    Per object: :func:`~pytest_camaudit.audit.assertions.assert_detected` at its score / IoU thresholds;
    then the CAM mass inside the *annotated* box of the map explaining the matched detection
    (:func:`~pytest_camaudit.audit.metric_assertions.assert_box_mass` when its ``mass`` threshold is
    above 0, measured only otherwise; with a per-box method an undetected object has no map).

    Returns:
        The object rows (also appended to ``case.objects``).

    Raises:
        AssertionError: listing every failed check ("expected …, got …") of this image.
    """
    __tracebackhide__ = True
    per_box = get_method(case.auditor.method).per_box
    failures: list[str] = []
    rows = []
    for obj in entry.objects:
        t = obj.thresholds
        det = None
        try:
            det = assert_detected(case, obj.label, obj.box, score_threshold=t.score, iou_threshold=t.iou)
        except (AssertionError, CamauditError) as exc:
            failures.append(str(exc))
        mass: float | None = None
        if det is not None or not per_box:
            try:
                if t.mass > 0:
                    mass = assert_box_mass(case, obj.box, t.mass, explain=det)
                else:
                    mass = box_mass(case.cam(det).values, obj.box)
            except AssertionError as exc:
                failures.append(str(exc))
                mass = _measured_mass(exc)
            except CamauditError as exc:
                failures.append(str(exc))
        rows.append(object_row(case, entry, obj, det, mass))
    case.objects.extend(rows)
    if entry.baseline is not None:
        from .baseline import compare_case, write_case

        if entry.baseline.update:
            write_case(entry, case, rows)
        else:
            failures.extend(compare_case(entry, case, rows))
    if failures:
        n = len(entry.objects)
        msg = f"{len(failures)} check(s) failed on {entry.id} ({n} annotated object{'s' if n != 1 else ''}):\n" + "\n".join(
            "- " + f.replace("\n", "\n  ") for f in failures
        )
        raise AssertionError(msg)
    return rows
