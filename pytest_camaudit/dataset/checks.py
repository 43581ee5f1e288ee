"""The checks of a data-driven case: every annotated object, then the baseline.

Every object is checked even after one fails (the dataset gates need all of them), then the
failures are raised together. Each object leaves a plain-data row on ``case.objects`` — what the
dataset gates (:mod:`.gates`) and baselines (:mod:`.baseline`) use,
and what travels to the pytest-xdist controller on the test report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..audit.assertions import assert_detected
from ..audit.metric_assertions import assert_box_mass
from ..audit.verdicts import iou
from ..errors import CamauditError
from ..methods.registry import get_method
from ..metrics import box_mass, region_mass
from ..records import ObjectRow
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


def _round(mass: float | None) -> float | None:
    return None if mass is None or math.isnan(mass) else round(float(mass), 4)


def object_row(case: AuditCase, entry: Entry, obj: ExpectedObject, detection: Any, mass: float | None,
               masses: Masses | None = None) -> ObjectRow:
    """The plain-data row of one checked object (JSON-compatible).

    ``mass`` is the judged mass (in the region ``--camaudit-mass-region`` chose). ``has_outline: true``
    and ``mask_mass`` (the mass inside the outline) are added when the annotation has an outline;
    ``mass_region`` and ``box_mass`` when the judged region is not the box. Rows of objects without
    an outline judged on their box are as they were before outlines were read.
    """
    t = obj.thresholds
    row: ObjectRow = {
        "case": entry.id,
        "key": entry.key,
        "annotation": obj.annotation_id,
        "label": obj.label,
        "box": [round(v, 2) for v in obj.box],
        "detected": detection is not None,
        "detection": detection.index if detection is not None else None,
        "score": _best_score(case, obj),
        "mass": _round(mass),
        "score_threshold": t.score,
        "gate_recall": t.gate_recall,
        "gate_mass": list(t.gate_mass) if t.gate_mass else None,
    }
    if obj.outline is not None:
        row["has_outline"] = True
        row["mask_mass"] = _round(masses.mask) if masses is not None else None
    if masses is not None and masses.region != "box":
        row["mass_region"] = masses.region
        row["box_mass"] = _round(masses.box)
    return row


@dataclass(frozen=True)
class Masses:
    """An object's CAM masses: inside its annotated box, inside its outline (None without one), and which region is judged."""

    box: float | None
    mask: float | None
    region: str


def judged_region(obj: ExpectedObject) -> str:
    """``mask`` when the object's mass is judged inside its outline (``mask``, or ``auto`` with an outline), else ``box``."""
    region = obj.thresholds.mass_region
    return "mask" if region == "mask" or (region == "auto" and obj.outline is not None) else "box"


def _measure(case: AuditCase, obj: ExpectedObject, det: Any, failures: list[str]) -> tuple[float | None, Masses]:
    """The judged mass (checked when the object's ``mass`` threshold is above 0) and both masses.

    The outline is filled once, here, and the checked mass is measured once, by the assertion (which
    takes the filled mask): the row's copy of it is the assertion's value, the other mass is measured
    here. A failed check's value is the one its error carries (rounded as the row rounds it).
    """
    t, region = obj.thresholds, judged_region(obj)
    cam = case.cam(det).values
    try:
        outline = obj.outline.mask(case.image.height, case.image.width) if obj.outline is not None else None
    except ValueError as exc:  # an RLE mask made for an image of another size
        failures.append(f"the outline of {obj.label} (annotation {obj.annotation_id}) does not fit the image: {exc}; fix the annotation")
        outline, obj = None, replace(obj, outline=None)
    if outline is not None:
        case.show_region(outline)
    if region == "mask" and outline is None:
        failures.append(f"expected an outline for {obj.label} (annotation {obj.annotation_id}) to measure its CAM mass in "
                        "(--camaudit-mass-region=mask), got none; annotate its outline, or use --camaudit-mass-region=auto")
        return None, Masses(box_mass(cam, obj.box), None, region)
    checked: float | None = None
    if t.mass > 0:
        try:
            checked = assert_box_mass(case, obj.box, t.mass, explain=det, region=outline if region == "mask" else None)
        except AssertionError as exc:
            failures.append(str(exc))
            checked = _measured_mass(exc)
    box = checked if t.mass > 0 and region == "box" else box_mass(cam, obj.box)
    mask = checked if t.mass > 0 and region == "mask" else region_mass(cam, outline) if outline is not None else None
    return (mask if region == "mask" else box), Masses(box, mask, region)


def _measured_mass(exc: AssertionError) -> float | None:
    """The mass a failed box-mass check measured (it travels on the error as ``camaudit_check``)."""
    check = getattr(exc, "camaudit_check", None)
    mass = check.measured.get("mass") if check is not None else None
    return float(mass) if isinstance(mass, (int, float)) else None


def check_entry(entry: Entry, case: AuditCase) -> list[ObjectRow]:
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
    per_box = get_method(case.method).per_box
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
        masses = None
        if det is not None or not per_box:
            try:
                mass, masses = _measure(case, obj, det, failures)
            except CamauditError as exc:
                failures.append(str(exc))
        elif judged_region(obj) != "box":
            masses = Masses(None, None, judged_region(obj))
        rows.append(object_row(case, entry, obj, det, mass, masses))
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
