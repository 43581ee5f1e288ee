"""What one image's forward left behind, and the per-image memos the CAM methods share.

An :class:`ImageAnalysis` holds the detector's :class:`~pytest_camaudit.detectors.base.Capture`
of one image (detections, geometry, detached feature levels, the family's per-detection facts) and
every map, gradient and mask run computed from it, so several assertions on one image cost one
forward. It lives in the engine's LRU cache; a finished test keeps none (see
:meth:`~pytest_camaudit.engine.engine.CamEngine.analyze`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar

import torch

from ..datatypes import CamMap, Detection, Geometry
from ..detectors.base import Capture, Detector
from ..errors import DetectorRuntimeError
from .alignment import common_grid, grid_to_image, levels_on_grid
from .images import LoadedImage

T = TypeVar("T")


class Owner(Protocol):
    """What an analysis reads of the :class:`~pytest_camaudit.engine.engine.CamEngine` that made it."""

    detector: Detector
    method: str
    max_cells: int
    batch_size: int | None

    def batch_for(self, height: int, width: int) -> int: ...

    def attach_graph(self, analysis: ImageAnalysis) -> None: ...


class ImageAnalysis:
    """One image's capture plus the maps and memos computed from it.

    Attributes:
        engine: the engine that made it (its detector, grid budget, default method).
        image: the input, ``uint8 [H, W, 3]`` in ``image.pixels``.
        capture: the detector's capture of the forward.
        maps: ``(method name, detection index or None) → CamMap``, filled by the methods.
    """

    def __init__(self, engine: Owner, image: LoadedImage, capture: Capture) -> None:
        self.engine = engine
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
            self._grid = common_grid(self.levels, self.geometry, self.engine.max_cells)
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
        else one backward through the forward's graph (the engine re-runs the forward with
        autograd when this analysis has none); levels the score does not depend on get zeros.

        Raises:
            DetectorRuntimeError: the score does not depend differentiably on the target layer.
        """
        return self.remember(("gradients", detection.index), lambda: self._gradients(detection))

    def _gradients(self, detection: Detection) -> OrderedDict[str, torch.Tensor]:
        detector = self.engine.detector
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
            self.engine.attach_graph(self)
        if self.capture.graph is None:  # pragma: no cover - attach_graph sets it or raises
            raise DetectorRuntimeError("gradients need a forward with autograd")
        return detector.graph_gradients(self.capture.graph, detection)
