"""One image under audit inside a test: its detections, the maps its assertions used, its verdicts.

:class:`CaseBase` is the state every assertion reads and records into (the assertion functions
type against it); :class:`~pytest_camaudit.audit.case.AuditCase` adds the assertions as methods.
When the test ends the case becomes plain data: a :class:`~pytest_camaudit.records.CaseRecord`
(:meth:`CaseBase.to_record`) and, for the report, a :class:`~pytest_camaudit.datatypes.CaseDrawing`
(:meth:`CaseBase.drawing`); then it is released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..datatypes import CamMap, CaseDrawing, ContextResult, Detection, ImagePicture, MapPicture, Outline
from ..methods.registry import cam_for, get_method
from ..records import SCORE_THRESHOLD, CaseRecord, CheckRecord, DetectionRow, ExpectedObject, ObjectRow, Status

if TYPE_CHECKING:
    from ..detectors.base import Detector
    from ..engine.analysis import ImageAnalysis
    from ..engine.engine import CamEngine
    from ..engine.images import LoadedImage

DISPLAY_SCORE_FLOOR = 0.05
"""Detections below this score are not drawn or listed in the report."""

Target = Detection | Sequence[float]


class CaseBase:
    """One image under audit inside a test (the state; :class:`AuditCase` adds the assertions).

    Attributes:
        name: how the report names it (file name, or what the test passed).
        image: the loaded image (``image.pixels`` is ``uint8 [H, W, 3]``).
        engine: the session's :class:`~pytest_camaudit.engine.engine.CamEngine` that analysed it (its
            detector and default method; what the assertions that run more forwards use).
        analysis: the engine's single-forward analysis of the image.
        score_threshold: default threshold of :meth:`assert_detected` (the run's).
        expected: objects the test expected, ``{"label", "box"}``.
        matched: detection index → index into ``expected``.
        checks: verdicts so far.
        objects: plain-data rows of annotated objects checked by a data-driven case (gates, baselines).
        regions: ``[H, W]`` masks of the objects' own regions (outlines) a mass was measured in, drawn by the report.
    """

    def __init__(self, engine: CamEngine, image: LoadedImage, analysis: ImageAnalysis, name: str,
                 score_threshold: float = SCORE_THRESHOLD) -> None:
        self.engine = engine
        self.image = image
        self._analysis: ImageAnalysis | None = analysis
        self.name = name
        self.score_threshold = score_threshold
        self.expected: list[ExpectedObject] = []
        self.matched: dict[int, int] = {}
        self.checks: list[CheckRecord] = []
        self.context_results: dict[tuple[int, float], ContextResult] = {}
        self.context_shown: dict[int, ContextResult] = {}  # detection index → result asserted on
        self.maps: dict[str, tuple[CamMap, tuple[float, ...] | None]] = {}  # figure name → map shown
        self.pictures: list[MapPicture | ImagePicture] = []
        self.objects: list[ObjectRow] = []
        self.regions: list[np.ndarray] = []

    def show_region(self, mask: np.ndarray) -> None:
        """Have the report outline ``mask`` (``[H, W]``, > 0 inside) on the case's pictures; the same mask is kept once."""
        if not any(m is mask or (m.shape == mask.shape and np.array_equal(m, mask)) for m in self.regions):
            self.regions.append(mask)

    # -- facts -----------------------------------------------------------------------------------
    @property
    def analysis(self) -> ImageAnalysis:
        """The engine's single-forward analysis of the image (gone once the test has ended)."""
        if self._analysis is None:
            raise RuntimeError(f"case {self.name!r} was released when its test ended; audit the image again in the test that needs it")
        return self._analysis

    def release(self) -> None:
        """Drop the analysis, the maps and pictures: what a finished test must not keep (its record stays plain data).

        A failing test's traceback (``sys.last_traceback``) can hold the case; after this it holds no array.
        """
        if self._analysis is not None:
            self._analysis.release()
        self._analysis = None
        self.maps.clear()
        self.pictures.clear()
        self.context_results.clear()
        self.context_shown.clear()

    @property
    def detector(self) -> Detector:
        return self.engine.detector

    @property
    def method(self) -> str:
        """The run's default CAM method."""
        return self.engine.method

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

    def predicted_mask(self, detection: Detection) -> np.ndarray:
        """``bool [H, W]``: the detector's own mask of ``detection`` (torchvision's Mask R-CNN), to measure a
        mass in: ``case.assert_cam_mass(det, 0.5, region=case.predicted_mask(det))``.

        Raises:
            ExpectationError: the detector predicts no masks (ultralytics segmentation models are refused
                at load; other detectors predict boxes only).
        """
        from ..errors import ExpectationError

        mask = self.analysis.capture.masks.get(detection.index)
        if mask is None:
            raise ExpectationError(
                f"detector {self.detector.name} predicted no mask for {detection.describe()}: only a detector whose output "
                "has `masks` (torchvision's Mask R-CNN) does; measure in the object's annotated outline or its box instead"
            )
        return mask.mask(self.image.height, self.image.width)

    # -- maps ------------------------------------------------------------------------------------
    def cam(self, detection: Detection | None = None, method: str | None = None) -> CamMap:
        """The map of ``method`` (default the run's) explaining ``detection`` (per-box methods)."""
        from ..errors import ExpectationError

        m = get_method(method or self.engine.method)
        if m.per_box and detection is None:
            raise ExpectationError(
                f"{m.name} explains one detection; pass the detection returned by assert_detected "
                "(a bare box has no score to explain), or use a class-agnostic method such as eigencam"
            )
        return cam_for(self.analysis, m.name, detection)

    def figure_for(self, cam: CamMap, box: Sequence[float] | None) -> str:
        """Register ``cam`` (with ``box`` outlined) as a figure of this case; returns its name."""
        name = f"cam-{cam.method}-{'image' if cam.target is None else cam.target}"
        self.maps.setdefault(name, (cam, tuple(box) if box is not None else None))
        return name

    def add_picture(self, picture: MapPicture | ImagePicture) -> str:
        """Show ``picture`` on the case's card (once per name); returns its name."""
        if not any(p.name == picture.name for p in self.pictures):
            self.pictures.append(picture)
        return picture.name

    def context(self, detection: Detection, margin: float) -> ContextResult:
        """Context check of ``detection``; the first call on an image checks every matched detection."""
        key = (detection.index, margin)
        if key not in self.context_results:
            pending = [d for d in self.detections if d.index in self.matched and (d.index, margin) not in self.context_results]
            if detection not in pending:
                pending.insert(0, detection)
            for r in self.engine.without_context(self.analysis, pending, margin):
                self.context_results[(r.detection.index, margin)] = r
        self.context_shown[detection.index] = self.context_results[key]
        return self.context_results[key]

    def context_figure(self, result: ContextResult) -> str:
        return f"context-{result.detection.index}"

    # -- plain data at the end of the test ---------------------------------------------------------
    def to_record(self, nodeid: str, outcome: Status | str) -> CaseRecord:
        """The case as plain data (no pictures; see :meth:`drawing`)."""
        return CaseRecord(
            nodeid=nodeid, name=self.name, source=self.image.source, outcome=Status(outcome).value,
            image_size=[self.image.width, self.image.height], model=self.detector.name, method=self.method,
            detections=[DetectionRow(index=d.index, box=[round(v, 2) for v in d.box], label=d.label_name, score=round(d.score, 4))
                        for d in self.detections if d.score >= DISPLAY_SCORE_FLOOR][:50],
            expected=list(self.expected), checks=list(self.checks), notes=list(self.image.notes),
        )

    def drawing(self) -> CaseDrawing:
        """Everything the report needs to draw this case's card, as plain data."""
        pictures: list[MapPicture | ImagePicture] = []
        for name, (cam, box) in self.maps.items():
            what = "image (class-agnostic)" if cam.target is None else self.detections[cam.target].describe()
            caption = f"{cam.method} for {what}" + ("; the activations were constant: the map is empty" if cam.degenerate else "")
            tag = self.detections[cam.target].label_name if cam.target is not None else ""
            outlines = (Outline((box[0], box[1], box[2], box[3]), tag),) if box is not None else ()
            pictures.append(MapPicture(name, f"CAM: {cam.method}", cam.values, outlines, caption))
        pictures.extend(self.pictures)
        for idx, r in self.context_shown.items():
            pictures.append(ImagePicture(f"context-{idx}", "Without context", r.image,
                                         (Outline(r.detection.box, f"{r.score_with:.2f} -> {r.score_without:.2f}"),),
                                         f"{r.detection.label_name}: score {r.score_with:.3f} with context, {r.score_without:.3f} without"))
        expected = tuple((str(e["label"]), (b[0], b[1], b[2], b[3])) for e in self.expected if (b := e["box"]))
        return CaseDrawing(self.image.pixels, tuple(self.above()), frozenset(self.matched), expected, self.score_threshold, tuple(pictures),
                           tuple(self.regions))
