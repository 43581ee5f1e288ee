"""What torchvision's one-stage detectors share: a detection is one anchor of one level's head.

RetinaNet, FCOS, SSD and SSDlite score every (cell, anchor) of every level with a classification
branch; a detection is the box regressed at one of them. The anchor (level, cell, anchor) that
produced a detection is found by re-scoring every level once (:func:`anchor_of`). Its score then
depends on that level only through the head's receptive field around the cell — or the whole level
when the head normalises over space (GroupNorm in RetinaNet v2 and FCOS).

Each family module (``retinanet.py``, ``fcos.py``, ``ssd.py`` beside this one) subclasses :class:`OneStageFamily`
with how its head scores a level exactly as ``postprocess_detections`` does (sigmoid;
``sqrt(sigmoid(cls) · sigmoid(centerness))`` for FCOS; softmax for SSD).

**Gradients through the detection's own anchor** (:meth:`OneStageFamily.box_gradients`). The
capturing forward runs without autograd; hooks keep the head's outputs and the anchors, and right
after the forward each detection is traced to its (level, y, x, anchor) from the captured scores
(:meth:`OneStageFamily.match_anchors`). A box's gradient is the head's classification branch run on
a detached leaf of the head's receptive field around that cell (the whole level under GroupNorm)
and one small backward, scattered into zeros of the level's shape.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.ops import clip_boxes_to_image

from ...datatypes import Detection, Geometry
from ...errors import DetectorRuntimeError
from ..family import Capture, DetectorView, HookPoint, LocalScorer
from ..receptive import conv3_depth, has_spatial_norm, radius_of, reach_of
from .common import TorchvisionFamily

__all__ = ["Cell", "OneStageFamily", "class_is", "conv3_depth", "has_spatial_norm", "radius_of", "reach_of", "to_cells"]

Cell = tuple[str, int, int, int, int]
"""``(level name, level index, y, x, anchor)``: where a one-stage detection came from."""


def to_cells(raw: torch.Tensor, k: int) -> torch.Tensor:
    """A head's ``[B, A·K, h, w]`` output as ``[B, h, w, A, K]``."""
    b, _, h, w = raw.shape
    return raw.view(b, -1, k, h, w).permute(0, 3, 4, 1, 2)


class OneStageFamily(TorchvisionFamily):
    """A one-stage head scoring (cell, anchor) pairs; subclasses say how (see the module docstring)."""

    box_local_gradients = True

    def scores(self, model: nn.Module, level: int, x: torch.Tensor) -> torch.Tensor:
        """``x FloatTensor[B, C, h, w]`` of level ``level`` → ``FloatTensor[B, h, w, A, K]`` as postprocessing scores them."""
        raise NotImplementedError

    def head_modules(self, model: nn.Module) -> list[nn.Module]:
        """The modules a cell's score runs through (their receptive field and normalisation matter)."""
        raise NotImplementedError

    def anchor_scores(self, head: dict[str, torch.Tensor], label: int) -> torch.Tensor:
        """``FloatTensor[ΣHWA]``: every anchor's score for ``label`` from the head's captured output (image 0)."""
        raise NotImplementedError

    def decode(self, model: Any, regression: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Boxes ``[n, 4]`` (canvas px) regressed at ``anchors`` ``[n, 4]``, as postprocessing decodes them."""
        decoded: torch.Tensor = model.box_coder.decode_single(regression, anchors)
        return decoded

    def anchors_per_cell(self, model: Any, levels: int) -> list[int]:
        """Anchors per cell of each level."""
        return [int(v) for v in model.anchor_generator.num_anchors_per_location()][:levels]

    # -- capture and trace ------------------------------------------------------------------------
    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        model: Any = detector.model
        return {
            **super().hook_points(detector),
            "head": HookPoint(model.head, take=lambda out: {k: v.detach() for k, v in out.items()}),
            "anchors": HookPoint(model.anchor_generator, take=lambda out: out[0].detach()),
        }

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        if "head" not in captured or "anchors" not in captured:
            return {}
        return {"cells": self.match_anchors(detector.model, captured, capture)}

    def match_anchors(self, model: Any, captured: dict[str, Any], capture: Capture) -> list[Cell]:
        """The :data:`Cell` of each detection: the anchors whose captured score equals its score (bit for
        bit, else within 1e-6); ties broken by the nearest decoded box, then the nearest cell centre."""
        head, anchors = captured["head"], captured["anchors"]
        shapes = [(int(v.shape[-2]), int(v.shape[-1])) for v in capture.levels.values()]
        per_cell = self.anchors_per_cell(model, len(shapes))
        offsets = [0]
        for (h, w), a in zip(shapes, per_cell, strict=True):
            offsets.append(offsets[-1] + h * w * a)
        scores: dict[int, torch.Tensor] = {}
        cells = []
        for det in capture.detections:
            s = scores.setdefault(det.label, self.anchor_scores(head, det.label))
            target = torch.tensor(det.score, dtype=s.dtype)
            hits = torch.nonzero(s == target).flatten()
            if len(hits) == 0:
                hits = torch.nonzero((s - target).abs() <= 1e-6 * max(1.0, det.score)).flatten()
            if len(hits) == 0:
                raise DetectorRuntimeError(f"no anchor of {type(model).__name__}'s head reproduces {det.describe()}; "
                                           "was its postprocess changed?")
            flat = self._nearest(model, head, anchors, hits, capture.geometry, det, shapes, per_cell, offsets)
            li = max(i for i in range(len(shapes)) if offsets[i] <= flat)
            cell, a = divmod(flat - offsets[li], per_cell[li])
            y, x = divmod(cell, shapes[li][1])
            cells.append((list(capture.levels)[li], li, y, x, a))
        return cells

    def _nearest(self, model: Any, head: dict[str, torch.Tensor], anchors: torch.Tensor, hits: torch.Tensor, geometry: Geometry,
                 det: Detection, shapes: Sequence[tuple[int, int]], per_cell: Sequence[int], offsets: Sequence[int]) -> int:
        if len(hits) == 1:
            return int(hits[0])
        box = torch.tensor(geometry.to_canvas(det.box), dtype=anchors.dtype)
        size = (int(geometry.resized[0]), int(geometry.resized[1]))
        decoded = clip_boxes_to_image(self.decode(model, head["bbox_regression"][0][hits], anchors[hits]), size)
        dist = (decoded - box[None]).abs().amax(-1)
        hits = hits[dist <= dist.min() + 1e-3]
        cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
        hp, wp = geometry.padded

        def centre_distance(flat: int) -> float:
            li = max(i for i in range(len(shapes)) if offsets[i] <= flat)
            (h, w), cell = shapes[li], (flat - offsets[li]) // per_cell[li]
            y, x = divmod(cell, w)
            return ((x + 0.5) * wp / w - cx) ** 2 + ((y + 0.5) * hp / h - cy) ** 2

        return min((int(f) for f in hits), key=centre_distance)

    def _window(self, model: nn.Module, capture: Capture, cell: Cell) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of the head's receptive field around ``cell`` (the whole level under spatial normalisation)."""
        name, _, y, x, _ = cell
        h, w = capture.levels[name].shape[-2:]
        r = radius_of(self.head_modules(model))
        return (0, h, 0, w) if r is None else (max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1))

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        cells = capture.memo.get("cells")
        if cells is None or detection.index >= len(cells):
            return None
        cell = cells[detection.index]
        name, i, y, x, a = cell
        y0, y1, x0, x1 = self._window(detector.model, capture, cell)
        out = OrderedDict((k, torch.zeros_like(v)) for k, v in capture.levels.items())
        with torch.enable_grad():
            leaf = capture.levels[name][:, y0:y1, x0:x1][None].detach().requires_grad_(True)
            score = self.scores(detector.model, i, leaf)[0, y - y0, x - x0, a, detection.label]
            (g,) = torch.autograd.grad(score, [leaf])
        out[name][:, y0:y1, x0:x1] = g[0]
        return out

    def anchor_of(self, model: nn.Module, capture: Capture, detection: Detection) -> tuple[str, int, int, int, int]:
        """``(level name, level index, y, x, a)`` of the cell and anchor that produced ``detection``.

        Candidates are the anchors whose score for the detection's label equals its score (to
        1e-4); among them, the one whose cell centre is nearest the box centre.

        Raises:
            DetectorRuntimeError: no anchor reproduces the score (the head is not the one scored).
        """
        x1, y1, x2, y2 = capture.geometry.to_canvas(detection.box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hp, wp = capture.geometry.padded
        best: tuple[float, tuple[str, int, int, int, int]] | None = None
        with torch.no_grad():
            for i, (name, lvl) in enumerate(capture.levels.items()):
                s = self.scores(model, i, lvl[None])[0, ..., detection.label]  # [h, w, A]
                hits = torch.nonzero((s - detection.score).abs() <= 1e-4 * max(1.0, detection.score))
                h, w = lvl.shape[-2:]
                for y, x, a in hits.tolist():
                    d = ((x + 0.5) * wp / w - cx) ** 2 + ((y + 0.5) * hp / h - cy) ** 2
                    if best is None or d < best[0]:
                        best = (d, (name, i, y, x, a))
        if best is None:
            raise DetectorRuntimeError(
                f"no anchor of {type(model).__name__}'s head reproduces the score {detection.score:.6f} of "
                f"{detection.describe()}; the head cannot re-score it (was the head or its postprocess changed?)"
            )
        return best[1]

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        """The head's receptive field around the detection's anchor (the whole level under spatial normalisation)."""
        model = detector.model
        cells = capture.memo.get("cells")
        cell = cells[detection.index] if cells is not None and detection.index < len(cells) else self.anchor_of(model, capture, detection)
        name, i, y, x, a = cell
        lvl = capture.levels[name]
        h, w = lvl.shape[-2:]
        y0, y1, x0, x1 = self._window(model, capture, cell)
        window = lvl[:, y0:y1, x0:x1]
        reach = reach_of(self.head_modules(model))
        support = torch.zeros(h, w, dtype=torch.bool, device=lvl.device)
        support[max(0, y - reach) : y + reach + 1, max(0, x - reach) : x + reach + 1] = True
        score = self._window_score(model, i, (y - y0, x - x0, a), detection.label)
        with torch.no_grad():
            base = float(score(window[None])[0])
        if abs(base - detection.score) > 1e-3 * max(1.0, detection.score):
            raise DetectorRuntimeError(
                f"re-scoring {detection.describe()} on a {tuple(window.shape[-2:])} window of level {name} gave "
                f"{base:.6f}; the head's receptive field is wider than its convolutions say"
            )
        return LocalScorer(name, window, score, support, base)

    def _window_score(self, model: nn.Module, level: int, cell: tuple[int, int, int], label: int) -> Callable[[torch.Tensor], torch.Tensor]:
        yy, xx, a = cell

        def score(windows: torch.Tensor) -> torch.Tensor:
            return self.scores(model, level, windows)[:, yy, xx, a, label]

        return score


def class_is(model: nn.Module, *names: str) -> bool:
    """Whether ``model``'s class or one of its bases is named one of ``names``."""
    return any(c.__name__ in names for c in type(model).__mro__)
