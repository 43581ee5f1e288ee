"""The per-test auditor (the ``camaudit`` fixture) and the audited case it hands out.

``camaudit.audit(image)`` loads the image, runs the detector once (cached per image content) and
returns an :class:`AuditCase`; the case's assertions record every verdict so the report can show
the image, the boxes, the maps and the numbers behind each failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .records import CaseRecord, CheckRecord

if TYPE_CHECKING:
    import numpy as np

    from .cams import CamMap
    from .detector import Detector
    from .engine import CamEngine, ContextResult, Detection, ImageAnalysis
    from .images import LoadedImage
    from .options import Settings

DISPLAY_SCORE_FLOOR = 0.05
"""Detections below this score are not drawn or listed in the report."""


class AuditCase:
    """One image under audit inside a test.

    Attributes:
        name: how the report names it (file name, or what the test passed).
        image: the loaded image (``image.pixels`` is ``uint8 [H, W, 3]``).
        analysis: the engine's single-forward analysis of the image.
        score_threshold: default threshold of :meth:`assert_detected`.
        expected: objects the test expected, ``{"label", "box"}``.
        matched: detection index → index into ``expected``.
        checks: verdicts so far.
    """

    def __init__(self, auditor: Auditor, image: LoadedImage, analysis: ImageAnalysis, name: str) -> None:
        self.auditor = auditor
        self.image = image
        self.analysis = analysis
        self.name = name
        self.score_threshold = auditor.score_threshold
        self.expected: list[dict[str, Any]] = []
        self.matched: dict[int, int] = {}
        self.checks: list[CheckRecord] = []
        self.context_results: dict[tuple[int, float], ContextResult] = {}
        self.context_shown: dict[int, ContextResult] = {}  # detection index → result asserted on
        self.maps: dict[str, tuple[CamMap, tuple[float, ...] | None]] = {}  # figure name → map shown
        self.extra_figures: list[tuple[str, str, np.ndarray, str]] = []
        """More pictures for the card: ``(name, title, uint8 [H, W, 3] RGB at image size, caption)``."""
        self.objects: list[dict[str, Any]] = []
        """Plain-data rows of annotated objects checked by a data-driven case (dataset gates, baselines)."""

    # -- facts -----------------------------------------------------------------------------------
    @property
    def detector(self) -> Detector:
        return self.auditor.engine.detector

    @property
    def detections(self) -> list[Detection]:
        """All detections, score descending, in original-image pixels."""
        return self.analysis.detections

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the image."""
        return (self.image.width, self.image.height)

    def above(self, score_threshold: float | None = None) -> list[Detection]:
        """Detections with score ≥ ``score_threshold`` (default: the run's threshold)."""
        thr = self.score_threshold if score_threshold is None else score_threshold
        return [d for d in self.detections if d.score >= thr]

    def record(self, check: CheckRecord) -> None:
        self.checks.append(check)

    # -- maps ------------------------------------------------------------------------------------
    def cam(self, detection: Detection | None = None, method: str | None = None, box: Sequence[float] | None = None) -> CamMap:
        """The map of ``method`` (default the run's) explaining ``detection`` (per-box methods)."""
        from .errors import ExpectationError
        from .methods import get_method

        m = get_method(method or self.auditor.engine.method)
        if m.per_box and detection is None:
            raise ExpectationError(
                f"{m.name} explains one detection; pass the detection returned by assert_detected "
                "(a bare box has no score to explain), or use a class-agnostic method such as eigencam"
            )
        return self.analysis.cam(m.name, detection)

    def figure_for(self, cam: CamMap, box: Sequence[float] | None) -> str:
        """Register ``cam`` (with ``box`` outlined) as a figure of this case; returns its name."""
        name = f"cam-{cam.method}-{'image' if cam.target is None else cam.target}"
        self.maps.setdefault(name, (cam, tuple(box) if box is not None else None))
        return name

    def context(self, detection: Detection, margin: float) -> ContextResult:
        """Context check of ``detection``; the first call on an image batches every matched detection."""
        key = (detection.index, margin)
        if key not in self.context_results:
            pending = [d for d in self.detections if d.index in self.matched and (d.index, margin) not in self.context_results]
            if detection not in pending:
                pending.insert(0, detection)
            for r in self.auditor.engine.without_context(self.analysis, pending, margin):
                self.context_results[(r.detection.index, margin)] = r
        self.context_shown[detection.index] = self.context_results[key]
        return self.context_results[key]

    def context_figure(self, result: ContextResult) -> str:
        return f"context-{result.detection.index}"

    # -- assertions, as methods ------------------------------------------------------------------
    def assert_detected(self, label: str | int, box: Sequence[float] | None = None, **kw: Any) -> Detection:
        """See :func:`pytest_camaudit.assertions.assert_detected`."""
        __tracebackhide__ = True
        from .assertions import assert_detected

        return assert_detected(self, label, box, **kw)

    def assert_cam_mass(self, target: Detection | Sequence[float], at_least: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.assertions.assert_cam_mass`."""
        __tracebackhide__ = True
        from .assertions import assert_cam_mass

        return assert_cam_mass(self, target, at_least, **kw)

    def assert_survives_without_context(self, detection: Detection, max_drop: float = 0.3, **kw: Any) -> ContextResult:
        """See :func:`pytest_camaudit.assertions.assert_survives_without_context`."""
        __tracebackhide__ = True
        from .assertions import assert_survives_without_context

        return assert_survives_without_context(self, detection, max_drop, **kw)

    # -- metric pack and sanity checks (pytest_camaudit.metric_assertions, pytest_camaudit.sanity) --
    def assert_box_mass(self, box: Sequence[float], at_least: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_box_mass`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_box_mass

        return assert_box_mass(self, box, at_least, **kw)

    def assert_pointing_game(self, target: Detection | Sequence[float], **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_pointing_game`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_pointing_game

        return assert_pointing_game(self, target, **kw)

    def assert_top_k_intersection(self, target: Detection | Sequence[float], k: float, at_least: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_top_k_intersection`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_top_k_intersection

        return assert_top_k_intersection(self, target, k, at_least, **kw)

    def assert_rank_accuracy(self, target: Detection | Sequence[float], at_least: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_rank_accuracy`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_rank_accuracy

        return assert_rank_accuracy(self, target, at_least, **kw)

    def assert_odi(self, target: Detection | Sequence[float], at_most: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_odi`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_odi

        return assert_odi(self, target, at_most, **kw)

    def assert_compactness(self, at_least: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_compactness`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_compactness

        return assert_compactness(self, at_least, **kw)

    def assert_forbidden_mass(self, region: Any, at_most: float, **kw: Any) -> float:
        """See :func:`pytest_camaudit.metric_assertions.assert_forbidden_mass`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_forbidden_mass

        return assert_forbidden_mass(self, region, at_most, **kw)

    def assert_deletion_auc(self, detection: Detection, at_most: float, **kw: Any) -> Any:
        """See :func:`pytest_camaudit.metric_assertions.assert_deletion_auc`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_deletion_auc

        return assert_deletion_auc(self, detection, at_most, **kw)

    def assert_insertion_auc(self, detection: Detection, at_least: float, **kw: Any) -> Any:
        """See :func:`pytest_camaudit.metric_assertions.assert_insertion_auc`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_insertion_auc

        return assert_insertion_auc(self, detection, at_least, **kw)

    def assert_cam_changes_with_weights(self, detection: Detection | None = None, **kw: Any) -> float:
        """See :func:`pytest_camaudit.sanity.assert_cam_changes_with_weights`."""
        __tracebackhide__ = True
        from .sanity import assert_cam_changes_with_weights

        return assert_cam_changes_with_weights(self, detection, **kw)

    def assert_cam_changes_with_target(self, detection: Detection, other: Detection | str | int, **kw: Any) -> float:
        """See :func:`pytest_camaudit.sanity.assert_cam_changes_with_target`."""
        __tracebackhide__ = True
        from .sanity import assert_cam_changes_with_target

        return assert_cam_changes_with_target(self, detection, other, **kw)

    # -- record ----------------------------------------------------------------------------------
    def to_record(self, nodeid: str, outcome: str, figures: bool, max_side: int | None = None) -> CaseRecord:
        """Plain-data record for the report; ``figures`` renders the pictures (costly)."""
        settings = self.auditor.settings
        rec = CaseRecord(
            nodeid=nodeid,
            name=self.name,
            source=self.image.source,
            outcome=outcome,
            image_size=[self.image.width, self.image.height],
            model=self.detector.name,
            method=settings.method if settings else self.auditor.engine.method,
            detections=[
                {"index": d.index, "box": [round(v, 2) for v in d.box], "label": d.label_name, "score": round(d.score, 4)}
                for d in self.detections
                if d.score >= DISPLAY_SCORE_FLOOR
            ][:50],
            expected=list(self.expected),
            checks=list(self.checks),
            notes=list(self.image.notes),
        )
        if figures:
            from .report.figures import case_figures

            try:
                rec.figures = case_figures(self, max_side=max_side)
            except Exception as exc:  # a picture that cannot be drawn must not lose the case
                rec.notes.append(f"figures could not be drawn ({type(exc).__name__}: {exc})")
        return rec


class Auditor:
    """What the ``camaudit`` fixture gives a test: ``audit(image)`` plus the run's settings.

    Attributes:
        engine: the session's :class:`~pytest_camaudit.engine.CamEngine`.
        settings: the run's resolved options.
        cases: every case audited in this test, in order.
        broken: records of inputs that could not be audited (bad files…), for the report.
    """

    def __init__(self, engine: CamEngine, settings: Settings | None = None, nodeid: str = "") -> None:
        self.engine = engine
        self.settings = settings
        self.nodeid = nodeid
        self.cases: list[AuditCase] = []
        self.broken: list[CaseRecord] = []

    @property
    def detector(self) -> Detector:
        return self.engine.detector

    @property
    def score_threshold(self) -> float:
        return self.settings.score_threshold if self.settings else 0.5

    def audit(self, image: str | Path | np.ndarray | Any, name: str | None = None) -> AuditCase:
        """Load ``image`` (path, array, PIL image or tensor) and analyse it with one forward.

        Raises:
            ImageInputError: the image cannot be used (the case is still listed in the report).
            DetectorRuntimeError: the detector raised on it.
        """
        __tracebackhide__ = True
        from .errors import CamauditError
        from .images import load_image

        label = name or (Path(image).name if isinstance(image, (str, Path)) else f"image {len(self.cases) + len(self.broken) + 1}")
        try:
            loaded = load_image(image, name=label)
            analysis = self.engine.analyze(loaded)
        except CamauditError as exc:
            message = str(exc) if label in str(exc) else f"{exc} (image: {label})"
            self.broken.append(CaseRecord(nodeid=self.nodeid, name=label, source=str(image) if isinstance(image, (str, Path)) else label,
                                          outcome="error", model=self.detector.name, method=self.engine.method, error=message))
            if message == str(exc):
                raise
            named = type(exc)(message)  # the same error, naming the image
            named.__cause__, named.__suppress_context__ = exc.__cause__, True
            raise named from exc.__cause__
        case = AuditCase(self, loaded, analysis, label)
        self.cases.append(case)
        return case

    def records(self, outcome: str, figures: bool, max_side: int | None = None) -> list[CaseRecord]:
        """Records of every case (broken ones included) for a test that ended with ``outcome``."""
        out = [c.to_record(self.nodeid, outcome, figures, max_side) for c in self.cases]
        for b in self.broken:
            out.append(b)
        return out
