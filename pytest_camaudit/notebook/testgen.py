"""The source of a pytest test that pins what a notebook case measured.

:func:`test_source` measures each object of the case (the detections its ``assert_detected``
calls matched, else every detection above the case's score threshold) and writes one test whose
assertions carry those measurements as thresholds, loosened by ``margin`` and clamped to
``[0, 1]``::

    score_threshold = measured score − margin          (assert_detected)
    at_least        = measured CAM mass − margin       (assert_cam_mass, on the case's method)
    max_drop        = measured context drop + margin   (assert_survives_without_context)

Lower bounds are rounded down and upper bounds up (3 decimals), so the model the values were
measured on passes them. The test gets its detector from the ``camaudit`` fixture, so it runs on
whatever ``--camaudit-model`` names; its docstring gives the command line of the model it was
measured on. Every user-supplied text (labels, paths, the model) enters the source as a Python
literal (``repr``) or a sanitised docstring line, never as code.
"""

from __future__ import annotations

import keyword
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..audit.case import AuditCase
from ..datatypes import Detection
from ..metrics import box_mass

CHECKS = ("detected", "cam_mass", "context")


@dataclass(frozen=True)
class Measured:
    """One object's measurements on the explored case (``mass`` NaN when its map is empty)."""

    detection: Detection
    label: str
    box: tuple[float, float, float, float]
    score: float
    mass: float
    drop: float | None


def _floor(x: float) -> float:
    return max(0.0, min(1.0, math.floor(x * 1000) / 1000))


def _ceil(x: float) -> float:
    return max(0.0, min(1.0, math.ceil(x * 1000) / 1000))


def _objects(case: AuditCase) -> list[tuple[Detection, Sequence[float]]]:
    """The detections to pin: those ``assert_detected`` matched (with the box the user gave), else all above the threshold."""
    if case.matched:
        by_index = {d.index: d for d in case.detections}
        out: list[tuple[Detection, Sequence[float]]] = []
        for idx, exp in sorted(case.matched.items(), key=lambda kv: kv[1]):
            box: Sequence[float] = case.expected[exp]["box"] or by_index[idx].box
            out.append((by_index[idx], box))
        return out
    return [(d, d.box) for d in case.above()]


def measure(case: AuditCase, method: str, checks: Sequence[str], context_margin: float) -> list[Measured]:
    """Each object's score, CAM mass in its box (``method``) and context drop (``context_margin``), as the test will measure them."""
    from ..methods.registry import get_method

    per_box = get_method(method).per_box
    out = []
    for d, box in _objects(case):
        mass = box_mass(case.cam(d if per_box else None, method).values, d.box) if "cam_mass" in checks else math.nan
        drop = case.context(d, context_margin).drop if "context" in checks else None
        out.append(Measured(d, d.label_name, (float(box[0]), float(box[1]), float(box[2]), float(box[3])), d.score, mass, drop))
    return out


def _name(text: str, prefix: str) -> str:
    name = re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_").lower()
    if not name or not name.isidentifier() or name[0].isdigit():
        name = f"{prefix}_{name}".rstrip("_")
    return f"{name}_" if keyword.iskeyword(name) else name


def _doc_line(text: str) -> str:
    """``text`` on one line, safe inside a triple-quoted docstring."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _object_lines(m: Measured, var: str, method: str, margin: float, context_margin: float, checks: Sequence[str]) -> list[str]:
    box = [round(v, 1) for v in m.box]
    drop = f", context drop {m.drop:.3f}" if m.drop is not None else ""
    lines = [f"    # measured: score {m.score:.3f}, {method} mass {m.mass:.3f}{drop}",
             f"    {var} = case.assert_detected({m.label!r}, {box!r}, score_threshold={_floor(m.score - margin)!r})"]
    if "cam_mass" in checks:
        if math.isnan(m.mass):
            lines.append(f"    # no CAM mass assertion: the {method} map was empty")
        else:
            lines.append(f"    case.assert_cam_mass({var}, at_least={_floor(m.mass - margin)!r}, method={method!r})")
    if m.drop is not None:
        lines.append(f"    case.assert_survives_without_context({var}, max_drop={_ceil(m.drop + margin)!r}, margin={context_margin!r})")
    return lines


def _image_path(case: AuditCase, image: str | Path | None) -> str:
    from ..errors import ExpectationError

    if image is not None:
        return str(image)
    source = Path(case.image.source)
    if not source.is_file():
        raise ExpectationError(f"case {case.name!r} was not explored from an image file ({case.image.source!r}), so a test cannot "
                               "load it again: save the image and pass its path, `case.test_source(image='scene.png')`")
    return str(source.resolve())


def pinned_test_source(case: AuditCase, model: str, margin: float = 0.1, *, weights: str | None = None, image: str | Path | None = None, method: str | None = None,
                checks: Sequence[str] = CHECKS, context_margin: float = 0.05, name: str | None = None) -> str:
    """The source of a pytest module with one test pinning ``case``'s measurements (see the module docstring).

    Args:
        model: the ``--camaudit-model`` value the case was audited with (named in the test's docstring).
        margin: how far each threshold sits from the measured value (in ``[0, 1]``).
        weights: the ``--camaudit-weights`` value, if any.
        image: the image path written into the test (default: the explored file, absolute).
        method: the CAM method of the mass assertions (default: the case's).
        checks: which of ``"detected"``, ``"cam_mass"``, ``"context"`` to write (``detected`` always is).
        context_margin: the context check's ``margin`` (how far the kept region grows past the box).
        name: the test function's name (default from the image's file name).

    Raises:
        ValueError: a margin outside ``[0, 1]`` or an unknown check.
        ExpectationError: the case has no image file and ``image`` was not given.
    """
    from ..validation import number_in

    try:
        margin = number_in(margin)
    except ValueError as exc:
        raise ValueError(f"`margin`: {exc}") from None
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}; expected some of {', '.join(CHECKS)}")
    method = method or case.method
    path = _image_path(case, image)
    measured = measure(case, method, checks, context_margin)
    func = _name(name or f"test_{Path(path).stem}", "test")
    func = func if func.startswith("test") else f"test_{func}"
    body = [f"    case = camaudit.audit(IMAGE, name={case.name!r})"]
    for i, m in enumerate(measured):
        body += _object_lines(m, f"{_name(m.label, 'obj')}_{i}", method, margin, context_margin, checks)
    if not measured:
        body.append("    assert not case.above(), 'the explored image had no detection above the score threshold'")
    command = " ".join(["pytest", f"--camaudit-model={shlex.quote(model)}",
                        *([f"--camaudit-weights={shlex.quote(weights)}"] if weights else []), "THIS_FILE.py"])
    doc = [f'"""Pinned from a notebook: {_doc_line(case.name)} on model {_doc_line(model)} ({_doc_line(method)}), margin {margin:.2f}.',
           "", "Run it on the model it was measured on:", "", f"    {_doc_line(command)}", '"""']
    return "\n".join([*doc, "", "from __future__ import annotations", "", "from pathlib import Path", "",
                      f"IMAGE = Path({path!r})", "", "", f"def {func}(camaudit):", *body, ""])
