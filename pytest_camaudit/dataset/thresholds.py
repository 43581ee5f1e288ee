"""Small text formats for thresholds that must fit in one ini line or command-line flag.

Nothing here imports numpy or torch: the option validators run when pytest parses its command
line. Each ``parse_*`` function validates a value and returns it as a plain string (what the
settings keep, so pytest-xdist can carry them and run files record them); the matching reader
turns it into typed data (:class:`GateMass`, :class:`Tolerances`, :data:`ClassOverrides`), and
:class:`ParsedSettings` holds a run's three, parsed once.

* Per-class overrides (``--camaudit-class-thresholds``), classes separated by ``;`` or newlines,
  ``*`` for every class::

      triangle: score=0.6 mass=0.3 gate-mass=0.4:0.9; star: iou=0.4; *: gate-recall=0.9

  keys: ``score`` (detection score threshold), ``iou`` (IoU with the annotated box), ``mass``
  (per-case CAM mass inside the annotated box), ``gate-recall`` (required per-class recall over
  the run), ``gate-mass`` (``X:R``: at least a share ``R`` of the class's objects have mass ≥ ``X``),
  ``discover`` (the margin ``--camaudit-discover`` judges the class at, or ``off`` to waive a class
  that legitimately depends on its surroundings).
* A gate on CAM mass (``--camaudit-gate-mass``): ``X:R``, e.g. ``0.4:0.9``.
* Baseline tolerances (``--camaudit-baseline-tolerance``): ``key=value`` pairs, see
  :data:`TOLERANCE_DEFAULTS`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple, TypedDict

from ..validation import number_in

CLASS_KEYS = ("score", "iou", "mass", "gate-recall", "gate-mass")
"""Per-class keys of data-driven cases (each a field of their thresholds)."""

DISCOVERY_KEY = "discover"
"""Per-class key of ``--camaudit-discover``: a margin in [0, 1], or ``off`` (waived)."""

ALL_CLASS_KEYS = (*CLASS_KEYS, DISCOVERY_KEY)

TOLERANCE_DEFAULTS: dict[str, float] = {
    "mass-drop": 0.25,
    "rank": 0.5,
    "top-iou": 0.3,
    "top": 0.1,
    "recall-drop": 0.05,
}
"""Baseline tolerances: largest allowed drop of an object's box mass (``mass-drop``), smallest
rank correlation of the two maps (``rank``), smallest IoU of their top-``top`` regions
(``top-iou``), largest drop of a class's recall over the run (``recall-drop``).

Set from the example suite (``example_suite/calibrate_dataset.py``, EigenGradCAM): the clean
``shapes`` model retrained with another seed drops an object's box mass by at most 0.24 and keeps
rank correlation ≥ 0.5 and top-10 % IoU ≥ 0.3 on all but 2–3 of 24 images — retraining alone
moves maps that much; a model that learned a shortcut moves them further."""


MASS_REGIONS = ("box", "mask", "auto")
"""Where a data-driven object's CAM mass is judged (``--camaudit-mass-region``): its annotated box, its
annotated outline (polygon or mask), or the outline where it has one and the box where not."""


def mass_region(value: str) -> str:
    """``box``, ``mask`` or ``auto`` (any case)."""
    v = str(value).strip().lower()
    if v not in MASS_REGIONS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(MASS_REGIONS)} (where the CAM mass is measured), got {value!r}")
    return v


OPTIONAL_TOLERANCES: dict[str, tuple[float, float]] = {"atlas-drift": (0.0, 2.0)}
"""Baseline tolerances without a default, with their range: what they bound is shown, and judged
only when one is given. ``atlas-drift``: the largest ``1 − r`` between a class's evidence atlas and
the baseline's (see :mod:`pytest_camaudit.discovery.atlas`)."""


def _probability(text: str, what: str) -> float:
    try:
        return number_in(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{what}: {exc}") from None


class GateMass(NamedTuple):
    """A mass gate ``X:R``: at least a share ``rate`` of a class's objects have CAM mass ≥ ``mass``."""

    mass: float
    rate: float

    def __repr__(self) -> str:
        return repr(tuple(self))  # shown as the (X, R) pair it is


ClassOverrides = TypedDict("ClassOverrides", {
    "score": float, "iou": float, "mass": float, "gate-recall": float, "gate-mass": GateMass,
    "discover": "float | Literal['off']",
}, total=False)
"""One class's overrides in ``--camaudit-class-thresholds`` (keys as written there)."""


@dataclass(frozen=True)
class Tolerances:
    """Baseline tolerances (``--camaudit-baseline-tolerance``), defaults from :data:`TOLERANCE_DEFAULTS`;
    ``atlas_drift`` is judged only when given (:data:`OPTIONAL_TOLERANCES`)."""

    mass_drop: float = TOLERANCE_DEFAULTS["mass-drop"]
    rank: float = TOLERANCE_DEFAULTS["rank"]
    top_iou: float = TOLERANCE_DEFAULTS["top-iou"]
    top: float = TOLERANCE_DEFAULTS["top"]
    recall_drop: float = TOLERANCE_DEFAULTS["recall-drop"]
    atlas_drift: float | None = None

    def items(self) -> dict[str, float]:
        """The given and default tolerances by their option keys (``mass-drop``…)."""
        out = {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None}


def gate_mass(value: str) -> GateMass:
    """``"X:R"`` → ``(X, R)``: mass threshold ``X`` and required share ``R``, both in ``[0, 1]``."""
    parts = str(value).strip().split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected MASS:RATE such as 0.4:0.9 (at least 90% of objects with CAM mass >= 0.4), got {value!r}"
        )
    return GateMass(_probability(parts[0], "gate mass"), _probability(parts[1], "gate rate"))


def parse_gate_mass(value: str) -> str:
    """Validate ``X:R`` (see :func:`gate_mass`)."""
    gate_mass(value)
    return str(value).strip()


def class_thresholds(value: str | None) -> dict[str, ClassOverrides]:
    """Per-class overrides → ``{class: {key: float | (X, R)}}`` (``*`` = every class).

    Raises:
        argparse.ArgumentTypeError: unknown key, bad number, missing ``class:`` prefix.
    """
    out: dict[str, ClassOverrides] = {}
    if not value:
        return out
    for chunk in re.split(r"[;\n]", str(value)):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, sep, rest = chunk.partition(":")
        name = name.strip()
        if not sep or not name or "=" in name:
            raise argparse.ArgumentTypeError(
                f"class thresholds: expected 'CLASS: key=value …' (e.g. 'triangle: score=0.6 mass=0.3'), got {chunk!r}"
            )
        values: dict[str, object] = out.setdefault(name, {})  # type: ignore[assignment]
        pairs = rest.replace(",", " ").split()
        if not pairs:
            raise argparse.ArgumentTypeError(f"class thresholds: no key=value after {name!r}; keys: {', '.join(ALL_CLASS_KEYS)}")
        for pair in pairs:
            key, eq, text = pair.partition("=")
            key = key.strip().replace("_", "-")
            if not eq or key not in ALL_CLASS_KEYS:
                raise argparse.ArgumentTypeError(
                    f"class thresholds for {name!r}: unknown setting {pair!r}; expected key=value with key one of {', '.join(ALL_CLASS_KEYS)}"
                )
            if key == DISCOVERY_KEY and text.strip().lower() == "off":
                values[key] = "off"
            else:
                values[key] = gate_mass(text) if key == "gate-mass" else _probability(text, f"{name} {key}")
    return out


def parse_class_thresholds(value: str) -> str:
    """Validate per-class overrides (see :func:`class_thresholds`)."""
    class_thresholds(value)
    return str(value).strip()


def tolerances(value: str | None) -> Tolerances:
    """``"mass-drop=0.1 rank=0.6"`` → the :class:`Tolerances`, given ones replacing the defaults of
    :data:`TOLERANCE_DEFAULTS`, plus the :data:`OPTIONAL_TOLERANCES` given."""
    out: dict[str, float] = {}
    keys = (*TOLERANCE_DEFAULTS, *OPTIONAL_TOLERANCES)
    for pair in (value or "").replace(",", " ").replace(";", " ").split():
        key, eq, text = pair.partition("=")
        key = key.strip().replace("_", "-")
        if not eq or key not in keys:
            raise argparse.ArgumentTypeError(
                f"baseline tolerance: unknown setting {pair!r}; expected key=value with key one of {', '.join(keys)}"
            )
        lo, hi = OPTIONAL_TOLERANCES.get(key, (-1.0 if key == "rank" else 0.0, 1.0))
        try:
            x = number_in(text, lo, hi)
            if key == "top" and x == 0.0:
                raise ValueError(f"expected a number in (0, 1], got {text!r}")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"baseline tolerance {key}: {exc}") from None
        out[key.replace("-", "_")] = x
    return Tolerances(**out)


def parse_tolerances(value: str) -> str:
    """Validate baseline tolerances (see :func:`tolerances`)."""
    tolerances(value)
    return str(value).strip()


@dataclass(frozen=True)
class ParsedSettings:
    """A run's text-valued settings, parsed once: the mass gate, the baseline tolerances and the
    per-class overrides (the settings themselves keep the text, for xdist and the run file)."""

    gate_mass: GateMass | None = None
    tolerances: Tolerances = Tolerances()
    classes: Mapping[str, ClassOverrides] = field(default_factory=dict)

    @classmethod
    def parse(cls, gate: str | None, tolerance: str | None, classes: str | None) -> ParsedSettings:
        """From the three texts (``--camaudit-gate-mass``, ``-baseline-tolerance``, ``-class-thresholds``)."""
        return cls(gate_mass(gate) if gate else None, tolerances(tolerance), class_thresholds(classes))

    @classmethod
    def of(cls, settings: Mapping[str, object]) -> ParsedSettings:
        """From a run file's ``settings`` (their option names, plain values)."""
        def text(key: str) -> str | None:
            value = settings.get(key)
            return None if value is None else str(value)

        return cls.parse(text("gate_mass"), text("baseline_tolerance"), text("class_thresholds"))
