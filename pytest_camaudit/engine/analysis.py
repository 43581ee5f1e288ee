"""What one image's forward left behind, and the per-image memos the CAM methods share.

An :class:`ImageAnalysis` holds the detector's :class:`~pytest_camaudit.detectors.base.Capture`
of one image (detections, geometry, detached feature levels, the family's per-detection facts) and
every map, gradient and mask run computed from it, so several assertions on one image cost one
forward. It lives in the engine's LRU cache; a finished test keeps none (see
:meth:`~pytest_camaudit.engine.engine.CamEngine.analyze`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import torch

from ..datatypes import CamMap, Detection, Geometry
from ..detectors.base import Capture, Detector, ScoreGraph
from ..errors import DetectorRuntimeError
from .alignment import common_grid, grid_to_image, levels_on_grid
from .images import LoadedImage

T = TypeVar("T")


Regrad = Callable[[LoadedImage, Sequence[Detection]], ScoreGraph]
"""Re-runs an image's forward with autograd and returns its graph; raises
:class:`~pytest_camaudit.errors.DetectorRuntimeError` when the detections differ from the ones
given (the engine's :meth:`~pytest_camaudit.engine.engine.CamEngine.regrad`)."""


class ImageAnalysis:
    """One image's capture plus the maps and memos computed from it.

    Attributes:
        detector: the detector that ran the forward.
        method: the run's default CAM method.
        max_cells: the common grid's cell budget (see :func:`~pytest_camaudit.engine.alignment.common_grid`).
        batch_for: ``(height, width) → images per detector call`` for copies of the image (D-RISE
            masks, re-scores).
        image: the input, ``uint8 [H, W, 3]`` in ``image.pixels``.
        capture: the detector's capture of the forward.
        maps: ``(method name, detection index or None) → CamMap``, filled by the methods.
    """

    def __init__(self, detector: Detector, image: LoadedImage, capture: Capture, *, method: str, max_cells: int,
                 batch_for: Callable[[int, int], int], regrad: Regrad) -> None:
        self.detector = detector
        self.method = method
        self.max_cells = max_cells
        self.batch_for = batch_for
        self._regrad = regrad
        self.image = image
        self.capture = capture
        self.maps: dict[tuple[str, int | None], CamMap] = {}
        self._memo: dict[Hashable, Any] = {}
        self._shared: dict[Hashable, Any] = {}
        self._grid: tuple[int, int] | None = None

    # -- facts of the forward ---------------------------------------------------------------------
    @property
    def detections(self) -> list[Detection]:
        """Every detection the model returned, in its order (score descending), original pixels."""
        return self.capture.detections

    @property
    def geometry(self) -> Geometry:
        return self.capture.geometry

    @property
    def levels(self) -> OrderedDict[str, torch.Tensor]:
        """``name → FloatTensor[C, h, w]`` target-layer activations, detached."""
        return self.capture.levels

    @property
    def grid(self) -> tuple[int, int]:
        """``(h, w)`` of the common grid the CAMs are computed on."""
        if self._grid is None:
            self._grid = common_grid(self.levels, self.geometry, self.max_cells)
        return self._grid

    def stack(self, levels: OrderedDict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Levels (default: the activations) on the common grid, channels stacked: ``[ΣC, h, w]``."""
        return levels_on_grid(levels if levels is not None else self.levels, self.geometry, self.grid)

    def to_image(self, grid_map: torch.Tensor) -> torch.Tensor:
        """A ``[h, w]`` map on the common grid → ``[H0, W0]`` on the original image's pixels."""
        return grid_to_image(grid_map, self.geometry)

    # -- memos ------------------------------------------------------------------------------------
    def remember(self, key: Hashable, make: Callable[[], T], shared: bool = False) -> T:
        """``make()`` once per ``key`` for this image (gradients, D-RISE mask runs…), then the same value.

        A ``shared`` memo survives :meth:`release` and serves the next test of the same image while
        the analysis is in the engine's cache: for small results that are costly to redo (D-RISE's
        per-mask detections), never for anything the size of the activations.
        """
        memo = self._shared if shared else self._memo
        if key not in memo:
            memo[key] = make()
        value: T = memo[key]
        return value

    def release(self) -> None:
        """Drop the maps, per-test memos (gradients…) and graphs built on demand (a replay); the capture
        and shared memos stay for the engine's cache."""
        self.maps.clear()
        self._memo.clear()
        self.capture.drop_graphs(forward=False)

    # -- gradients --------------------------------------------------------------------------------
    @property
    def has_graph(self) -> bool:
        """True while the autograd graph of this image's forward is kept (graph-differentiated families)."""
        return self.capture.graph is not None

    def drop_graph(self) -> None:
        """Free the forward's autograd graph and those built on demand (see :meth:`Capture.drop_graphs`)."""
        self.capture.drop_graphs()

    def gradients(self, detection: Detection) -> OrderedDict[str, torch.Tensor]:
        """``d score(detection) / d level`` for every level: ``name → FloatTensor[C, h, w]`` (memoised per box).

        Through the detection's own path when its family has one (no autograd forward needed),
        else one backward through the forward's graph (re-run with autograd by the ``regrad``
        callable it was given, when this analysis has none); levels the score does not depend on get zeros.

        Raises:
            DetectorRuntimeError: the score does not depend differentiably on the target layer.
        """
        return self.remember(("gradients", detection.index), lambda: self._gradients(detection))

    def _gradients(self, detection: Detection) -> OrderedDict[str, torch.Tensor]:
        detector = self.detector
        try:
            local = detector.family.box_gradients(detector, self.capture, detection)
        except DetectorRuntimeError:
            raise
        except Exception as exc:
            raise DetectorRuntimeError(
                f"detector {detector.name} raised {type(exc).__name__} while differentiating {detection.describe()}: {exc}"
            ) from exc
        if local is not None:
            return local
        if self.capture.graph is None:
            self.capture.graph = self._regrad(self.image, self.detections)
        return detector.graph_gradients(self.capture.graph, detection)
