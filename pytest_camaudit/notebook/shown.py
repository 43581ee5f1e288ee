"""A case and a map that show themselves in Jupyter: :class:`NotebookCase` and :class:`ShownMap`.

``explore(image)`` returns a :class:`NotebookCase`: an :class:`~pytest_camaudit.audit.case.AuditCase`
(every ``assert_…`` of a test works on it) whose ``_repr_png_`` is the image with its boxes and
whose ``_repr_html_`` adds the CAM overlays its checks used and the checks table, as the report
draws them (:mod:`pytest_camaudit.report.notebook`). ``case.cam(...)`` returns a
:class:`ShownMap`: the :class:`~pytest_camaudit.datatypes.CamMap` plus the image it lies on, shown
as the overlay. ``case.release()`` frees the analysis (activations, graphs, maps); a released case
says so when used again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..audit.case import AuditCase
from ..datatypes import Box, CamMap, Detection
from ..errors import CamauditError
from ..records import SCORE_THRESHOLD, CaseRecord

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis
    from ..engine.engine import CamEngine
    from ..engine.images import LoadedImage


class ReleasedCaseError(CamauditError):
    """A notebook case was used after ``case.release()`` freed its analysis."""


@dataclass(frozen=True, eq=False)
class ShownMap(CamMap):
    """A :class:`~pytest_camaudit.datatypes.CamMap` that shows itself over its image.

    Attributes:
        pixels: ``uint8 [H, W, 3]``, the image the map explains (same ``H, W`` as ``values``).
        box: ``[x1, y1, x2, y2]`` outlined on the picture (the explained detection's box), if any.
        about: the outline's tag (the detection's label).
    """

    pixels: np.ndarray | None = None
    box: Box | None = None
    about: str = ""

    def picture(self) -> np.ndarray:
        """``uint8 [H', W', 3]``: the map as a JET overlay on its image, the box outlined."""
        from ..report.notebook import map_picture

        pixels = self.pixels if self.pixels is not None else np.zeros((*self.values.shape[:2], 3), np.uint8)
        return map_picture(pixels, self.values, self.box, self.about)

    def _repr_png_(self) -> bytes:
        from ..report.notebook import png_bytes

        return png_bytes(self.picture())


def shown_map(cam: CamMap, pixels: np.ndarray, detection: Detection | None) -> ShownMap:
    """``cam`` with its image (no copy of either array) and the explained detection's box."""
    values = {f.name: getattr(cam, f.name) for f in fields(CamMap)}
    box, about = (detection.box, detection.label_name) if detection is not None else (None, "")
    return ShownMap(**values, pixels=pixels, box=box, about=about)


class NotebookCase(AuditCase):
    """An explored image (see the module docstring); made by :func:`pytest_camaudit.explore`.

    Attributes:
        model: the ``--camaudit-model`` value it was explored with (what :meth:`test_source` names).
        weights: the ``--camaudit-weights`` value, if any.
    """

    def __init__(self, engine: CamEngine, image: LoadedImage, analysis: ImageAnalysis, name: str, model: str,
                 weights: str | None = None, *, score_threshold: float = SCORE_THRESHOLD) -> None:
        super().__init__(engine, image, analysis, name, score_threshold)
        self.model = model
        self.weights = weights

    @property
    def released(self) -> bool:
        """True once :meth:`release` freed the analysis."""
        return self._analysis is None

    @property
    def analysis(self) -> ImageAnalysis:
        if self._analysis is None:
            raise ReleasedCaseError(f"case {self.name!r} was released (case.release() freed its analysis and maps); "
                                    f"explore the image again: pytest_camaudit.explore({self.image.source!r}, model={self.model!r})")
        return self._analysis

    def release(self) -> None:
        """Free the analysis (activations, autograd graphs), its maps and pictures, and the engine's cached copy.

        The checks stay (the case still shows its table); anything that needs the analysis raises
        :class:`ReleasedCaseError`.
        """
        super().release()
        self.engine.forget(self.image.key)

    def cam(self, detection: Detection | None = None, method: str | None = None) -> ShownMap:
        """The map of ``method`` (default: the case's) explaining ``detection``, shown over the image."""
        cam = super().cam(detection, method)
        return cam if isinstance(cam, ShownMap) else shown_map(cam, self.image.pixels, detection if cam.target is not None else None)

    def summary(self) -> CaseRecord:
        """The case as plain data (outcome ``failed`` when a check failed); without detections once released."""
        outcome = "failed" if any(not c.passed for c in self.checks) else "passed"
        if self.released:
            return CaseRecord(nodeid="", name=self.name, source=self.image.source, outcome=outcome, image_size=[self.image.width, self.image.height],
                              model=self.model, method=self.method, expected=list(self.expected), checks=list(self.checks))
        rec = self.to_record("", outcome)
        rec.model = self.model
        return rec

    def _repr_png_(self) -> bytes | None:
        if self.released:
            return None
        from ..report.notebook import detections_picture, png_bytes

        return png_bytes(detections_picture(self.drawing()))

    def _repr_html_(self) -> str:
        from ..report.notebook import case_html

        return case_html(self.summary(), None if self.released else self.drawing())

    def test_source(self, margin: float = 0.1, *, image: str | Path | None = None, method: str | None = None,
                    checks: Sequence[str] = ("detected", "cam_mass", "context"), context_margin: float = 0.05,
                    name: str | None = None) -> str:
        """The source of a pytest test pinning this case's measurements with ``margin``
        (see :func:`pytest_camaudit.notebook.testgen.pinned_test_source` for the arguments)."""
        from .testgen import pinned_test_source

        return pinned_test_source(self, self.model, margin, weights=self.weights, image=image, method=method, checks=checks, context_margin=context_margin, name=name)

    def __repr__(self) -> str:
        state = "released" if self.released else f"{len(self.above())} detections above {self.score_threshold:.2f}"
        return f"<NotebookCase {self.name!r} model={self.model!r} method={self.method!r}: {state}, {len(self.checks)} checks>"
