"""The per-test auditor (what the ``camaudit`` fixture gives a test) and how a test's cases end.

``camaudit.audit(image)`` loads the image, runs the detector once (cached per image content) and
returns an :class:`~pytest_camaudit.audit.case.AuditCase`. When the test ends the plugin asks for
:meth:`Auditor.records` — plain data, pictures drawn by whoever it passes as ``draw`` — and then
:meth:`Auditor.release` drops every case, so a finished test keeps no analysis, activation or map.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..datatypes import CaseDrawing
from ..records import SCORE_THRESHOLD, CaseRecord, FigureRecord, ObjectRow, Status
from .case import AuditCase

if TYPE_CHECKING:
    from ..detectors.base import Detector
    from ..engine.engine import CamEngine

Draw = Callable[[CaseDrawing], list[FigureRecord]]
"""Renders a case's drawing into figures (the report layer's :func:`~pytest_camaudit.report.figures.case_figures`)."""


class AuditSettings(Protocol):
    """What the auditor reads from the run's settings."""

    @property
    def score_threshold(self) -> float: ...


class Auditor:
    """What the ``camaudit`` fixture gives a test: ``audit(image)`` plus the run's settings.

    Attributes:
        engine: the session's :class:`~pytest_camaudit.engine.engine.CamEngine`.
        settings: the run's resolved options (only ``score_threshold`` is read).
        cases: every case audited in this test, in order.
        broken: records of inputs that could not be audited (bad files…), for the report.
    """

    def __init__(self, engine: CamEngine, settings: AuditSettings | None = None, nodeid: str = "") -> None:
        self.engine = engine
        self.settings = settings
        self.nodeid = nodeid
        self.cases: list[AuditCase] = []
        self.broken: list[CaseRecord] = []

    @property
    def detector(self) -> Detector:
        return self.engine.detector

    @property
    def method(self) -> str:
        """The run's default CAM method."""
        return self.engine.method

    @property
    def score_threshold(self) -> float:
        return self.settings.score_threshold if self.settings is not None else SCORE_THRESHOLD

    def audit(self, image: Any, name: str | None = None) -> AuditCase:
        """Load ``image`` (path, array, PIL image or tensor) and analyse it with one forward.

        Raises:
            ImageInputError: the image cannot be used (the case is still listed in the report).
            DetectorRuntimeError: the detector raised on it.
        """
        __tracebackhide__ = True
        from ..engine.images import load_image
        from ..errors import CamauditError
        from ..methods.registry import needs_graph

        label = name or (Path(image).name if isinstance(image, (str, Path)) else f"image {len(self.cases) + len(self.broken) + 1}")
        try:
            loaded = load_image(image, name=label)
            analysis = self.engine.analyze(loaded, grad=needs_graph(self.engine))
        except CamauditError as exc:
            message = str(exc) if label in str(exc) else f"{exc} (image: {label})"
            self.broken.append(CaseRecord(nodeid=self.nodeid, name=label, source=str(image) if isinstance(image, (str, Path)) else label,
                                          outcome=Status.ERROR.value, model=self.detector.name, method=self.method, error=message))
            if message == str(exc):
                raise
            named = type(exc)(message)  # the same error, naming the image
            named.__cause__, named.__suppress_context__ = exc.__cause__, True
            raise named from exc.__cause__
        case = AuditCase(self.engine, loaded, analysis, label, self.score_threshold)
        self.cases.append(case)
        return case

    def records(self, outcome: Status, draw: Draw | None = None, discover: bool = False, evidence: bool = True) -> list[CaseRecord]:
        """Records of every case (broken ones included) for a test that ended with ``outcome``.

        ``draw`` renders each case's pictures; a picture that cannot be drawn costs a note on its
        case, never the case. With ``evidence`` (the plugin: when an output reads it), each case
        carries the evidence of the objects its checks matched (:mod:`.evidence`), with context
        profiles when ``discover`` (``--camaudit-discover``); an object whose profile cannot be
        computed costs a note, never the case.
        """
        from ..errors import CamauditError
        from .evidence import case_evidence

        out = []
        for case in self.cases:
            rec = case.to_record(self.nodeid, outcome)
            try:
                if evidence or discover:
                    rec.evidence = case_evidence(case, self.method, self.engine if discover else None)
            except CamauditError as exc:
                rec.notes.append(f"where the evidence lies could not be measured ({exc})")
            if draw is not None:
                try:
                    rec.figures = draw(case.drawing())
                except Exception as exc:  # noqa: BLE001 - a picture must not lose the case
                    rec.notes.append(f"figures could not be drawn ({type(exc).__name__}: {exc})")
            out.append(rec)
        return [*out, *self.broken]

    def object_rows(self) -> list[ObjectRow]:
        """Plain-data rows of every annotated object the test's data-driven cases checked."""
        return [row for case in self.cases for row in case.objects]

    def release(self) -> None:
        """Forget every case and the maps and memos computed for it (the engine's cache keeps its captures)."""
        for case in self.cases:
            case.release()
        self.cases.clear()
        self.broken.clear()
