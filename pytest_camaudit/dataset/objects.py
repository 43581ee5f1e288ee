"""The plain values a data-driven case is made of: thresholds, annotated objects, the baseline to use.

Kept apart from :mod:`.entries` (which reads datasets) so that :mod:`.checks` and
:mod:`.baseline` type against them without importing the reader: the package's modules form no
cycle (import-linter's ``acyclic_siblings`` contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..datatypes import ObjectOutline
from ..records import SCORE_THRESHOLD
from .thresholds import GateMass, Tolerances


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of one object (see :mod:`pytest_camaudit.dataset.thresholds` for the keys)."""

    score: float = SCORE_THRESHOLD
    iou: float = 0.5
    mass: float = 0.0
    gate_recall: float | None = None
    gate_mass: GateMass | None = None
    mass_region: str = "box"
    """Where ``mass`` and the mass gate are measured: ``box``, ``mask`` (the annotation's outline) or ``auto``."""


@dataclass(frozen=True)
class ExpectedObject:
    """An annotated object: the annotation id, class name (the detector's), ``[x1, y1, x2, y2]`` box, its thresholds,
    and its own outline (polygons or a mask in image pixels) when the annotation has one.

    The outline is read, kept and flagged on the object's row (``has_outline``); checks and gates
    measure the box.
    """

    annotation_id: Any
    label: str
    box: tuple[float, float, float, float]
    thresholds: Thresholds
    outline: ObjectOutline | None = None


@dataclass(frozen=True)
class BaselineSpec:
    """Where the baseline is and what to do with it (plain, hashable values)."""

    directory: str
    update: bool
    tolerances: Tolerances = Tolerances()


class Entry(Protocol):
    """What the checks and the baseline read of a :class:`~pytest_camaudit.dataset.entries.CaseEntry`."""

    @property
    def id(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def objects(self) -> tuple[ExpectedObject, ...]: ...

    @property
    def baseline(self) -> BaselineSpec | None: ...
