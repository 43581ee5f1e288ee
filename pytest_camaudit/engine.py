"""The CAM engine: one detector forward per image gives detections *and* the CAM's activations.

grad-cam's detection workflow runs the detector once for the boxes, then again inside
``EigenCAM(model, target_layers=[model.backbone], reshape_transform=fasterrcnn_reshape_transform)``
to capture activations. :meth:`CamEngine.analyze` registers forward hooks on the target layer and
on ``model.transform`` (for the resize / padding geometry), runs the detector once, removes the
hooks in ``finally``, and keeps what a CAM needs in an :class:`ImageAnalysis`. When the chosen
method needs gradients the same forward runs with autograd on and each explained box costs one
backward (``torch.autograd.grad`` on the tensor levels — no tensor hooks on dict outputs, the
trap behind grad-cam issues #42 / #228 / #384). Analyses are cached by image content, so several
assertions on one image cost one forward.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .alignment import Geometry, common_grid, grid_to_image, levels_on_grid
from .cams import CamMap
from .context import ContextResult, best_match_score, rescore_without_context
from .detector import Detector
from .errors import DetectorRuntimeError
from .images import LoadedImage

DEFAULT_MAX_CELLS = 16_384
"""Common-grid budget: the finest feature level with at most this many cells carries the CAM."""


@dataclass(frozen=True)
class Detection:
    """One detection in original-image pixels.

    Attributes:
        index: position in the detector's output for this image (sorted by score, descending).
        box: ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2 <= W``.
        label: class index; ``label_name`` its name.
        score: confidence in ``[0, 1]``.
    """

    index: int
    box: tuple[float, float, float, float]
    label: int
    label_name: str
    score: float

    def describe(self) -> str:
        x1, y1, x2, y2 = self.box
        return f"{self.label_name} {self.score:.3f} at [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]"


def _to_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``FloatTensor[3, H, W]`` in ``[0, 1]`` on ``device``."""
    t = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())
    return t.to(device).permute(2, 0, 1).float().div_(255.0)


class ImageAnalysis:
    """What one forward of the detector left behind for one image.

    Attributes:
        image: the input, ``uint8 [H, W, 3]`` in ``image.pixels``.
        detections: every detection the model returned, in its order (score descending).
        geometry: resize / padding of this image inside the detector.
        levels: ``name → FloatTensor[C, h, w]`` target-layer activations, detached.
    """

    def __init__(
        self,
        engine: CamEngine,
        image: LoadedImage,
        detections: list[Detection],
        geometry: Geometry,
        levels: OrderedDict[str, torch.Tensor],
        graph: tuple[OrderedDict[str, torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.engine = engine
        self.image = image
        self.detections = detections
        self.geometry = geometry
        self.levels = OrderedDict((k, v.detach()) for k, v in levels.items())
        self._graph = graph  # (levels with grad, scores with grad) while this is the newest analysis
        self._maps: dict[tuple[str, int | None], CamMap] = {}
        self._grid: tuple[int, int] | None = None

    # -- geometry helpers shared by the methods -------------------------------------------------
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

    @property
    def has_graph(self) -> bool:
        """True while the autograd graph of this image's forward is kept (gradient methods)."""
        return self._graph is not None

    def drop_graph(self) -> None:
        self._graph = None

    def gradients(self, detection: Detection) -> OrderedDict[str, torch.Tensor]:
        """``d score(detection) / d level`` for every level: ``name → FloatTensor[C, h, w]``.

        One backward through the graph kept from the forward; levels the score does not depend
        on get zeros.

        Raises:
            DetectorRuntimeError: the forward ran without autograd, or the score does not depend
                differentiably on the target layer.
        """
        if self._graph is None:
            raise DetectorRuntimeError("gradients need a forward with autograd; call analyze(..., grad=True)")
        levels, scores = self._graph
        if not scores.requires_grad:
            raise DetectorRuntimeError(
                f"the scores of {self.engine.detector.name} do not depend differentiably on its target layer; "
                "gradient CAM methods cannot explain it — use --camaudit-method=eigencam"
            )
        names = list(levels)
        grads = torch.autograd.grad(
            scores[detection.index], [levels[n] for n in names], retain_graph=True, allow_unused=True
        )
        return OrderedDict(
            (n, (g[0] if g is not None else torch.zeros_like(levels[n][0])).detach()) for n, g in zip(names, grads)
        )

    # -- the user-facing maps --------------------------------------------------------------------
    def cam(self, method: str | None = None, detection: Detection | None = None) -> CamMap:
        """The CAM of ``method`` (default: the engine's) for ``detection`` (per-box methods) or
        the image (class-agnostic methods ignore ``detection``). Cached."""
        from .methods import get_method

        m = get_method(method or self.engine.method)
        target = detection.index if (m.per_box and detection is not None) else None
        if m.per_box and detection is None:
            raise ValueError(f"{m.name} explains one detection; pass `detection=`")
        key = (m.name, target)
        if key not in self._maps:
            if m.needs_grad and not self.has_graph:
                self.engine.attach_graph(self)
            self._maps[key] = m.compute(self, detection)
        return self._maps[key]


class CamEngine:
    """Runs a :class:`~pytest_camaudit.detector.Detector` and computes CAMs from its forward.

    Args:
        detector: the detector.
        method: default CAM method name (see :mod:`pytest_camaudit.methods`).
        max_cells: common-grid budget (see :data:`DEFAULT_MAX_CELLS`).
        cache_size: how many image analyses to keep (least recently used are dropped).
    """

    def __init__(self, detector: Detector, method: str = "eigencam", max_cells: int = DEFAULT_MAX_CELLS, cache_size: int = 8) -> None:
        from .methods import get_method

        get_method(method)  # fail early on a bad name
        self.detector = detector
        self.method = method
        self.max_cells = max_cells
        self.cache_size = cache_size
        self.forwards = 0  # detector forwards run by analyze() (for tests and benchmarks)
        self._cache: OrderedDict[str, ImageAnalysis] = OrderedDict()

    @property
    def needs_grad(self) -> bool:
        from .methods import get_method

        return get_method(self.method).needs_grad

    @contextmanager
    def _capture(self) -> Iterator[dict[str, Any]]:
        """Forward hooks on the target layer and ``model.transform``, removed even on error."""
        captured: dict[str, Any] = {}

        def on_layer(_module: Any, _inp: Any, out: Any) -> None:
            captured.setdefault("features", out)

        def on_transform(_module: Any, _inp: Any, out: Any) -> None:
            captured.setdefault("image_list", out[0] if isinstance(out, tuple) else out)

        model = self.detector.model
        handles = [self.detector.target_layer.register_forward_hook(on_layer)]
        transform = getattr(model, "transform", None)
        if isinstance(transform, torch.nn.Module):
            handles.append(transform.register_forward_hook(on_transform))
        try:
            yield captured
        finally:
            for h in handles:
                h.remove()

    def _run(self, tensors: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        try:
            outputs = self.detector.model(tensors)
        except Exception as exc:
            raise DetectorRuntimeError(
                f"detector {self.detector.name} raised {type(exc).__name__} during forward: {exc} "
                "(the model's own traceback is shown above this error)"
            ) from exc
        return self._checked(outputs, len(tensors))

    def _checked(self, outputs: Any, n: int) -> list[dict[str, torch.Tensor]]:
        """``outputs`` if they follow the torchvision contract, else a :class:`DetectorRuntimeError`."""
        name = self.detector.name
        contract = ("one dict per image with 'boxes' FloatTensor[N, 4] ([x1, y1, x2, y2] pixels), 'labels' Int64Tensor[N] "
                    "and 'scores' FloatTensor[N] (the torchvision convention); wrap the model so that it returns that")
        if not isinstance(outputs, (list, tuple)) or len(outputs) != n:
            got = f"a {type(outputs).__name__}" + (f" of {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
            raise DetectorRuntimeError(f"detector {name} returned {got} for {n} image(s); expected {contract}")
        for out in outputs:
            if not isinstance(out, dict) or not all(isinstance(out.get(k), torch.Tensor) for k in ("boxes", "labels", "scores")):
                keys = sorted(out) if isinstance(out, dict) else type(out).__name__
                raise DetectorRuntimeError(f"detector {name} returned {keys} for an image; expected {contract}")
            boxes, labels, scores = out["boxes"], out["labels"], out["scores"]
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or not len(boxes) == len(labels) == len(scores):
                raise DetectorRuntimeError(
                    f"detector {name} returned boxes {list(boxes.shape)}, labels {list(labels.shape)}, scores {list(scores.shape)}; expected {contract}"
                )
            if not (torch.isfinite(boxes).all() and torch.isfinite(scores).all()):
                raise DetectorRuntimeError(
                    f"detector {name} returned NaN or infinite boxes or scores; the model is numerically broken "
                    "(NaN weights, or an input it cannot handle)"
                )
        return list(outputs)

    def _detections(self, out: dict[str, torch.Tensor]) -> list[Detection]:
        boxes = out["boxes"].detach().float().cpu().tolist()
        labels = out["labels"].detach().cpu().tolist()
        scores = out["scores"].detach().float().cpu().tolist()
        return [
            Detection(i, tuple(float(v) for v in b), int(lab), self.detector.label_name(int(lab)), float(s))  # type: ignore[arg-type]
            for i, (b, lab, s) in enumerate(zip(boxes, labels, scores))
        ]

    def analyze(self, image: LoadedImage, grad: bool | None = None) -> ImageAnalysis:
        """Detections and target-layer activations of ``image`` from a single forward (cached).

        Args:
            image: a loaded image.
            grad: run with autograd so per-box gradient maps can follow (default: when the
                engine's method needs it).
        """
        grad = self.needs_grad if grad is None else grad
        hit = self._cache.get(image.key)
        if hit is not None:
            self._cache.move_to_end(image.key)
            if grad and not hit.has_graph:
                self.attach_graph(hit)
            return hit
        detections, geometry, levels, graph = self._forward(image, grad)
        analysis = ImageAnalysis(self, image, detections, geometry, levels, graph)
        if grad:
            self._drop_graphs()
            analysis._graph = graph
        self._cache[image.key] = analysis
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return analysis

    def attach_graph(self, analysis: ImageAnalysis) -> None:
        """Re-run ``analysis``'s forward with autograd (a second forward: the first ran without)."""
        detections, geometry, levels, graph = self._forward(analysis.image, True)
        if [(d.label, round(d.score, 4)) for d in detections] != [(d.label, round(d.score, 4)) for d in analysis.detections]:
            raise DetectorRuntimeError(
                f"detector {self.detector.name} returned different detections for the same image on a second "
                "forward; it is not deterministic in eval mode (dropout left on?)"
            )
        self._drop_graphs()
        analysis._graph = graph

    def _drop_graphs(self) -> None:
        for other in self._cache.values():
            other.drop_graph()

    def _forward(
        self, image: LoadedImage, grad: bool
    ) -> tuple[list[Detection], Geometry, OrderedDict[str, torch.Tensor], tuple[OrderedDict[str, torch.Tensor], torch.Tensor] | None]:
        """One hooked forward of one image."""
        tensor = _to_tensor(image.pixels, self.detector.device)
        with self._capture() as captured, torch.set_grad_enabled(grad):
            outputs = self._run([tensor])
        self.forwards += 1
        if "features" not in captured:
            raise DetectorRuntimeError(
                f"the target layer {type(self.detector.target_layer).__name__} of {self.detector.name} did not run "
                "during the forward; choose a layer the model calls"
            )
        levels_b = self.detector.levels(captured["features"])
        levels = OrderedDict((k, v[0]) for k, v in levels_b.items())
        il = captured.get("image_list")
        h0, w0 = image.height, image.width
        if il is not None and hasattr(il, "image_sizes"):
            hr, wr = (int(v) for v in il.image_sizes[0])
            hp, wp = (int(v) for v in il.tensors.shape[-2:])
            geometry = Geometry((h0, w0), (hr, wr), (hp, wp))
        else:
            geometry = Geometry.identity(h0, w0)
        out = outputs[0]
        # gradients must be taken w.r.t. the batched tensors the model consumed, not views of them
        graph = (OrderedDict(levels_b), out["scores"]) if grad else None
        return self._detections(out), geometry, levels, graph

    @torch.no_grad()
    def detect(self, images: Sequence[np.ndarray], batch_size: int = 1) -> list[list[Detection]]:
        """Plain detection (no hooks, no autograd) of ``uint8 [H, W, 3]`` images, ``batch_size`` per forward.

        One image per forward by default: float32 kernels round differently with the batch's size
        and contents (scores move by ~1e-7), so batching would make a detection's context score
        depend on which other boxes happened to be checked with it. Pass a larger ``batch_size``
        for speed where bit-for-bit results do not matter.
        """
        result: list[list[Detection]] = []
        for i in range(0, len(images), batch_size):
            chunk = [_to_tensor(im, self.detector.device) for im in images[i : i + batch_size]]
            result.extend(self._detections(o) for o in self._run(chunk))
        return result

    def fill_colour(self) -> np.ndarray:
        """The neutral fill: the model's normalisation mean (0 after normalising), else mid grey."""
        mean = getattr(getattr(self.detector.model, "transform", None), "image_mean", None)
        if mean is not None and len(mean) == 3:
            return np.clip(np.round(np.asarray(mean, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.array([128, 128, 128], dtype=np.uint8)

    def without_context(self, analysis: ImageAnalysis, detections: Sequence[Detection], margin: float = 0.05) -> list[ContextResult]:
        """Re-score ``detections`` with everything outside each box filled (see :mod:`pytest_camaudit.context`)."""
        return rescore_without_context(self, analysis, detections, margin)

    def clear(self) -> None:
        """Forget every cached analysis (frees activations and graphs)."""
        self._cache.clear()
