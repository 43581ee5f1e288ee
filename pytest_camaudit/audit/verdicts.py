"""How every assertion ends: :func:`verdict` records the check on its case and, when it failed, :func:`fail` raises.

Every assertion of :mod:`.assertions`, :mod:`.metric_assertions` and :mod:`.sanity` is decorated
with :func:`names_the_case` and ends in :func:`verdict` (or :func:`fail`, typed ``NoReturn``, where it
already knows the check failed), so each one

* records a :class:`~pytest_camaudit.records.CheckRecord` on its case (what the report, the JSON
  and JUnit show), passed or not;
* fails with a plain ``AssertionError`` reading "expected …, got …" followed by ``image: <name>``;
* turns a malformed expectation (unknown class, NaN threshold, box outside the image…) into an
  :class:`~pytest_camaudit.errors.ExpectationError` that names the image and is recorded as a
  failed check of its kind — the test's mistake, shown as such, not the model's.

The validators shared by the assertions live here too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

from ..datatypes import Box, Detection
from ..errors import ExpectationError
from ..records import CheckRecord
from ..validation import number_in

if TYPE_CHECKING:
    from .casebase import CaseBase

P = ParamSpec("P")
R = TypeVar("R")


def failure(message: str, check: CheckRecord) -> AssertionError:
    """A plain ``AssertionError`` (pytest shows ``AssertionError: expected …``) carrying the check."""
    err = AssertionError(message)
    err.camaudit_check = check  # type: ignore[attr-defined]
    return err


def _record(case: CaseBase, kind: str, passed: bool, message: str, detection: Detection | None, label: str | None,
            box: Sequence[float] | None, measured: Mapping[str, float | str | None] | None, thresholds: Mapping[str, float | str | None] | None,
            figure: str | None) -> CheckRecord:
    """The :class:`CheckRecord` of check ``kind``, recorded on ``case``; ``label`` defaults to the detection's class."""
    if label is None and detection is not None:
        label = detection.label_name
    check = CheckRecord(kind, bool(passed), message, label, [float(v) for v in box] if box is not None else None,
                        detection.index if detection is not None else None, dict(measured or {}), dict(thresholds or {}), figure)
    case.record(check)
    return check


def fail(
    case: CaseBase,
    kind: str,
    message: str,
    *,
    detection: Detection | None = None,
    label: str | None = None,
    box: Sequence[float] | None = None,
    measured: Mapping[str, float | str | None] | None = None,
    thresholds: Mapping[str, float | str | None] | None = None,
    figure: str | None = None,
) -> NoReturn:
    """Record check ``kind`` on ``case`` as failed and raise the ``AssertionError`` carrying it.

    ``message`` reads "expected …, got …"; the image's name is appended on its own line.
    ``label`` defaults to the detection's class.
    """
    __tracebackhide__ = True
    message = f"{message}\n  image: {case.name}"
    raise failure(message, _record(case, kind, False, message, detection, label, box, measured, thresholds, figure))


def verdict(
    case: CaseBase,
    kind: str,
    passed: bool,
    ok_message: str,
    fail_message: str,
    *,
    detection: Detection | None = None,
    label: str | None = None,
    box: Sequence[float] | None = None,
    measured: Mapping[str, float | str | None] | None = None,
    thresholds: Mapping[str, float | str | None] | None = None,
    figure: str | None = None,
) -> CheckRecord:
    """Record check ``kind`` on ``case`` and return it when ``passed``; else :func:`fail` with ``fail_message``.

    ``fail_message`` reads "expected …, got …"; the image's name is appended on its own line.
    ``label`` defaults to the detection's class.
    """
    __tracebackhide__ = True
    if not passed:
        fail(case, kind, fail_message, detection=detection, label=label, box=box, measured=measured, thresholds=thresholds, figure=figure)
    return _record(case, kind, True, ok_message, detection, label, box, measured, thresholds, figure)


def names_the_case(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """An :class:`ExpectationError` from the wrapped assertion names the image and is recorded as a failed ``kind``."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            __tracebackhide__ = True
            try:
                return fn(*args, **kwargs)
            except ExpectationError as exc:
                case: CaseBase = args[0]  # type: ignore[assignment]
                if "\n  image: " in str(exc):
                    raise
                message = f"{exc}\n  image: {case.name}"
                case.record(CheckRecord(kind, False, f"invalid expectation: {message}"))
                raise ExpectationError(message) from None

        return wrapper

    return deco


def threshold(name: str, value: object, lo: float = 0.0, hi: float = 1.0) -> float:
    """A finite number in ``[lo, hi]``, or an :class:`ExpectationError` naming the argument ``name``."""
    try:
        return number_in(value, lo, hi)
    except ValueError as exc:
        raise ExpectationError(f"`{name}`: {exc}") from None


def fmt_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in box) + "]"


def validate_box(box: Sequence[float], size: tuple[int, int], what: str = "box") -> Box:
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
            f"{what} {fmt_box(vals)} is degenerate (needs x1 < x2 and y1 < y2, in [x1, y1, x2, y2] order; "
            "COCO [x, y, w, h] boxes must be converted)"
        )
    w, h = size
    if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
        raise ExpectationError(f"{what} {fmt_box(vals)} lies outside the {w}x{h} image; fix the annotation")
    return (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))


def detection_arg(value: object, what: str) -> Detection:
    """``value`` when it is a detection (what ``assert_detected`` returns), else an :class:`ExpectationError`."""
    if not isinstance(value, Detection):
        raise ExpectationError(f"{what} needs a detection (what assert_detected returns), got {type(value).__name__}")
    return value


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
