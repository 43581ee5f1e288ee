"""The CAM engine: one detector forward per image gives detections *and* the CAM's activations.

grad-cam's detection workflow runs the detector once for the boxes, then again inside
``EigenCAM(model, target_layers=[model.backbone], reshape_transform=fasterrcnn_reshape_transform)``
to capture activations. :meth:`CamEngine.analyze` registers the forward hooks the detector's family
asks for (the target layer, the preprocessing), runs the detector once, removes the hooks in
``finally``, and keeps what a CAM needs in an :class:`~pytest_camaudit.engine.analysis.ImageAnalysis`.
Gradient methods differentiate through the detection's own path where the family knows it, else
through the forward's autograd graph (``torch.autograd.grad`` on the level tensors the model
consumed — no tensor hooks on dict outputs, the trap behind grad-cam issues #42 / #228 / #384).
Analyses are cached by image content in a small LRU, so several assertions on one image cost one
forward.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ..datatypes import ContextResult, Detection
from ..detectors.base import Capture, Detector, ScoreGraph
from ..errors import DetectorRuntimeError
from .analysis import ImageAnalysis
from .context import rescore_filled, rescore_without_context
from .hooks import recording
from .images import LoadedImage
from .masks import predicted_masks

DEFAULT_MAX_CELLS = 16_384
"""Common-grid budget: the finest feature level with at most this many cells carries the CAM."""

DEFAULT_BATCH = 8
"""Most images per detector call for the extra forwards of one image (``--camaudit-batch-size``)."""

CPU_BATCH_PIXELS = 262_144
"""On a CPU, automatic batches hold at most this many image pixels (512×512): batching small
images pays (shapes, 160×160: 1.31× on the context check), large ones do not (R50 at 480×640,
resized to 800×1067: 0.65×, memory-bound; ``benchmarks/bench_batching.py``)."""


def to_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``FloatTensor[3, H, W]`` in ``[0, 1]`` on ``device``."""
    t = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())
    return t.to(device).permute(2, 0, 1).float().div_(255.0)


class CamEngine:
    """Runs a :class:`~pytest_camaudit.detectors.base.Detector` and keeps what CAMs need from its forward.

    Args:
        detector: the detector.
        method: the run's default CAM method name (see :mod:`pytest_camaudit.methods`).
        max_cells: common-grid budget (see :data:`DEFAULT_MAX_CELLS`).
        cache_size: how many image analyses to keep (least recently used are dropped).
        batch_size: images per detector call for the extra forwards of one image (context
            re-scores, D-RISE masks, deletion / insertion curves): copies of one image share its
            size, hence its padding, so they batch exactly (see :meth:`detect`). ``None``
            (automatic, see :meth:`batch_for`): :data:`DEFAULT_BATCH` on a GPU, on a CPU as many as
            fit :data:`CPU_BATCH_PIXELS`.
    """

    def __init__(self, detector: Detector, method: str = "eigencam", max_cells: int = DEFAULT_MAX_CELLS, cache_size: int = 8,
                 batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
        self.detector = detector
        self.method = method
        self.batch_size = batch_size
        self.max_cells = max_cells
        self.cache_size = cache_size
        self.forwards = 0  # capturing forwards run by analyze() (for tests and benchmarks)
        self._cache: OrderedDict[str, ImageAnalysis] = OrderedDict()

    def analyze(self, image: LoadedImage, grad: bool = False) -> ImageAnalysis:
        """Detections and target-layer activations of ``image`` from a single forward (cached).

        Args:
            image: a loaded image.
            grad: run with autograd and keep the graph, for a family that differentiates the
                whole forward (the methods layer asks for it when a gradient method needs it).
        """
        hit = self._cache.get(image.key)
        self._drop_graphs(keep=hit, forward=False)  # a family's on-demand graphs (a replay) serve one image at a time
        if hit is not None:
            self._cache.move_to_end(image.key)
            if grad and not hit.has_graph:
                self.attach_graph(hit)
            return hit
        capture = self._capture(image, grad)
        if grad:
            self._drop_graphs()
        analysis = ImageAnalysis(self.detector, image, capture, method=self.method, max_cells=self.max_cells,
                                 batch_for=self.batch_for, regrad=self.regrad)
        self._cache[image.key] = analysis
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return analysis

    def attach_graph(self, analysis: ImageAnalysis) -> None:
        """Re-run ``analysis``'s forward with autograd (a second forward: the first ran without)."""
        analysis.capture.graph = self.regrad(analysis.image, analysis.detections)

    def regrad(self, image: LoadedImage, detections: Sequence[Detection]) -> ScoreGraph:
        """``image``'s forward again, with autograd: its graph (the other cached analyses' graphs are
        freed). An analysis is given this to differentiate without holding the engine.

        Raises:
            DetectorRuntimeError: the forward returned other detections than ``detections``.
        """
        capture = self._capture(image, True)
        if [(d.label, round(d.score, 4)) for d in capture.detections] != [(d.label, round(d.score, 4)) for d in detections]:
            raise DetectorRuntimeError(
                f"detector {self.detector.name} returned different detections for the same image on a second "
                "forward; it is not deterministic in eval mode (dropout left on?)"
            )
        self._drop_graphs(keep=self._cache.get(image.key))
        assert capture.graph is not None  # a forward with autograd keeps its graph
        return capture.graph

    def _drop_graphs(self, keep: ImageAnalysis | None = None, forward: bool = True) -> None:
        """Free the autograd graphs of the cached analyses but ``keep`` (the forwards' too unless ``forward=False``)."""
        for other in self._cache.values():
            if other is not keep:
                other.capture.drop_graphs(forward)

    def _capture(self, image: LoadedImage, grad: bool) -> Capture:
        """One hooked forward of one image."""
        detector = self.detector
        tensor = to_tensor(image.pixels, detector.device)
        with recording(detector.family.hook_points(detector)) as captured, torch.set_grad_enabled(grad):
            outputs = detector.run([tensor])
        self.forwards += 1
        features = detector.family.features(captured)
        if features is None:
            raise DetectorRuntimeError(
                f"the target layer {type(detector.target_layer).__name__} of {detector.name} did not run "
                "during the forward; choose a layer the model calls"
            )
        levels_b = detector.levels(features)
        geometry = detector.family.geometry(captured, (image.height, image.width))
        out = outputs[0]
        capture = Capture(
            detections=detector.detections(out),
            geometry=geometry,
            levels=OrderedDict((k, v[0].detach()) for k, v in levels_b.items()),
            # gradients must be taken w.r.t. the batched tensors the model consumed, not views of them
            graph=(OrderedDict(levels_b), out["scores"]) if grad else None,
        )
        capture.masks = predicted_masks(out, capture.detections, image.height, image.width)
        capture.memo = detector.family.memo(detector, captured, capture)
        return capture

    def batch_for(self, height: int, width: int) -> int:
        """Images per detector call for copies of a ``height`` × ``width`` image: the engine's
        ``batch_size`` when set, else :data:`DEFAULT_BATCH` on a GPU and, on a CPU, as many as
        fit :data:`CPU_BATCH_PIXELS` (at least 1, at most :data:`DEFAULT_BATCH`)."""
        if self.batch_size is not None:
            return self.batch_size
        if self.detector.device.type != "cpu":
            return DEFAULT_BATCH
        return max(1, min(DEFAULT_BATCH, CPU_BATCH_PIXELS // max(1, height * width)))

    def detect(self, images: Sequence[np.ndarray], batch_size: int | None = None) -> list[list[Detection]]:
        """Plain detection (no hooks, no autograd) of ``uint8 [H, W, 3]`` images, ``batch_size``
        (default: :meth:`batch_for` the first image) per forward.

        Batched scores equal one-at-a-time scores to float32 rounding (≤ 1e-5 measured; kernels
        round differently with the batch's size), and a run is deterministic: the same images in
        the same batches give the same numbers. ``batch_size=1`` reproduces one-at-a-time bit for bit.
        """
        device = self.detector.device
        tensors = [to_tensor(im, device) for im in images]
        if batch_size is None:
            batch_size = self.batch_for(*images[0].shape[:2]) if len(images) else 1
        return self.detector.detect(tensors, batch_size)

    def fill_colour(self) -> np.ndarray:
        """``uint8 [3]``: the detector's neutral fill (see :meth:`Detector.fill_colour`)."""
        return self.detector.fill_colour()

    def without_context(self, analysis: ImageAnalysis, detections: Sequence[Detection], margin: float = 0.05) -> list[ContextResult]:
        """Re-score ``detections`` with everything outside each box filled (see :mod:`pytest_camaudit.engine.context`)."""
        return rescore_without_context(analysis.image.pixels, detections, self.fill_colour(), self.detect, margin)

    def rescore_filled(self, analysis: ImageAnalysis, detection: Detection, masks: Sequence[np.ndarray]) -> list[float]:
        """``detection``'s score with each of ``masks`` (``bool [H, W]``) filled with the detector's neutral colour,
        in batches of :meth:`batch_for` (see :func:`pytest_camaudit.engine.context.rescore_filled`)."""
        return rescore_filled(analysis.image.pixels, detection, masks, self.fill_colour(), self.detect)

    def clear(self) -> None:
        """Forget every cached analysis (frees activations and graphs)."""
        self._cache.clear()

    def forget(self, key: str) -> None:
        """Forget the cached analysis of the image whose content key is ``key``, if it is cached (a released notebook case)."""
        self._cache.pop(key, None)
