"""The ultralytics ``Detect`` head seen from one detection: where it came from, and its class logit
recomputed from a window of one level.

No ultralytics import here: the head is read through its attributes (``cv3`` / ``one2one_cv3``,
``stride``, ``nc``, ``end2end``), which YOLOv8, YOLO11 and YOLO26 share. See
:mod:`.yolo` for the family that uses it.

A YOLO detection is one *anchor point*: cell ``(y, x)`` of level ``i`` (stride 8, 16 or 32). Its
class score is ``sigmoid(cls_i(level_i)[c, y, x])``, where ``cls_i`` is the head's classification
branch of that level (``cv3[i]``; ``one2one_cv3[i]`` when the head runs end-to-end) — two 3×3
convolutions (YOLOv8) or two depthwise 3×3 + pointwise pairs (YOLO11, YOLO26) and a 1×1, with
batch norms that are per-channel affine maps in eval mode. So the score reads a ``5 × 5`` window of
its level, and nothing else: the branch run on that window (cut at the level's border, where the
full map's zero padding is the same) gives the full forward's logit to the last bit, and its
gradient is the full graph's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...datatypes import Detection, Geometry
from ...errors import DetectorRuntimeError
from ..receptive import radius_of, reach_of

Cell = tuple[str, int, int, int]
"""``(level name, level index, y, x)``: the anchor point a YOLO detection came from."""

Window = tuple[int, int, int, int]
"""``(y0, y1, x0, x1)``: a window of cells of one level (ends exclusive)."""


def classification_branches(head: Any) -> list[nn.Module]:
    """The branch that scores classes, per level: ``one2one_cv3`` when the head runs end-to-end
    (``head.end2end``, e.g. a YOLO26 set to NMS-free inference), else ``cv3``."""
    branches = head.one2one_cv3 if bool(getattr(head, "end2end", False)) else head.cv3
    return list(branches)


def level_names(head: Any) -> list[str]:
    """``P3``, ``P4``, ``P5`` (``P<log2 stride>``) for the head's levels; their indices before strides are known."""
    strides = [float(s) for s in torch.as_tensor(getattr(head, "stride", [])).flatten()]
    if len(strides) != int(head.nl) or min(strides, default=0.0) <= 0:
        return [str(i) for i in range(int(head.nl))]
    return [f"P{round(math.log2(s))}" for s in strides]


def class_scores(logits: Sequence[torch.Tensor], cls: int) -> torch.Tensor:
    """``FloatTensor[A]``: every anchor point's score for class ``cls`` from the branches' outputs
    ``[1, nc, h, w]`` — concatenated level after level and passed through the sigmoid as ``Detect``
    does (the same layout, so the same float32 values; one class only, so a detection costs one row)."""
    return torch.cat([t[0, cls].reshape(-1) for t in logits]).sigmoid()


def anchor_boxes(output: Any, nc: int) -> torch.Tensor | None:
    """``FloatTensor[A, 4]`` xyxy canvas boxes of every anchor point from the head's eval output
    (``y [B, 4 + nc, A]``, boxes as ``xywh``, first of ``(y, raw)``); ``None`` for another layout
    (an end-to-end head returns its top-k rows instead)."""
    y = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(y, torch.Tensor) or y.ndim != 3 or y.shape[1] != 4 + nc:
        return None
    cx, cy, w, h = y[0, :4].detach()
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def trace_cells(logits: Sequence[torch.Tensor], names: Sequence[str], detections: Sequence[Detection], geometry: Geometry,
                boxes: torch.Tensor | None = None) -> list[Cell]:
    """The :data:`Cell` of each detection: the anchor point whose score for the detection's class
    equals its score (bit for bit, else within 1e-6). Ties — saturated scores of exactly 1.0, or
    the identical cells of a uniform padding — go to the anchor whose decoded box is nearest the
    detection's box, else (no ``boxes``) whose cell centre is nearest the box centre.

    Args:
        logits: per level, the classification branch's output ``[1, nc, h, w]`` in that forward.
        names: the level names, in the same order.
        detections: the forward's detections; ``label - 1`` is the model's class.
        geometry: the letterbox, to put boxes on the canvas.
        boxes: ``FloatTensor[A, 4]`` every anchor point's decoded box (:func:`anchor_boxes`), if known.

    Raises:
        DetectorRuntimeError: no anchor point reproduces a detection's score.
    """
    if not detections:
        return []
    shapes = [(int(t.shape[-2]), int(t.shape[-1])) for t in logits]
    offsets = [0, *itertools.accumulate(h * w for h, w in shapes)]
    rows: dict[int, torch.Tensor] = {}
    cells: list[Cell] = []
    for det in detections:
        if det.label not in rows:
            rows[det.label] = class_scores(logits, det.label - 1)
        row = rows[det.label]
        target = torch.tensor(det.score, dtype=row.dtype, device=row.device)
        hits = torch.nonzero(row == target).flatten()
        if len(hits) == 0:
            hits = torch.nonzero((row - target).abs() <= 1e-6 * max(1.0, det.score)).flatten()
        if len(hits) == 0:
            raise DetectorRuntimeError(f"no anchor point of the YOLO head reproduces {det.describe()}; was the head or its "
                                       "post-processing changed?")
        box = torch.tensor(geometry.to_canvas(det.box), dtype=torch.float64, device=row.device)
        if len(hits) == 1:
            dist = torch.zeros(1)
        elif boxes is not None:  # the detection's box was clipped to the image: clip the candidates alike
            top, left = geometry.offset
            (hr, wr), lo = geometry.resized, torch.tensor([left, top, left, top], dtype=torch.float64, device=row.device)
            hi = lo + torch.tensor([wr, hr, wr, hr], dtype=torch.float64, device=row.device)
            dist = (torch.minimum(torch.maximum(boxes[hits].double(), lo), hi) - box).abs().amax(-1)
        else:
            hp, wp = geometry.padded
            centres = torch.cat([_centres(h, w, hp / h, wp / w) for h, w in shapes]).to(row.device)  # [A, 2] (x, y)
            dist = ((centres[hits] - (box[:2] + box[2:]) / 2) ** 2).sum(-1)
        flat = int(hits[torch.argmin(dist)])
        level = max(i for i in range(len(shapes)) if offsets[i] <= flat)
        y, x = divmod(flat - offsets[level], shapes[level][1])
        cells.append((names[level], level, y, x))
    return cells


def _centres(h: int, w: int, sy: float, sx: float) -> torch.Tensor:
    """``FloatTensor[h * w, 2]``: ``(x, y)`` canvas-pixel centres of a level's cells, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) * sx, (ys.flatten() + 0.5) * sy], dim=-1)


def window_of(branch: nn.Module, level_shape: Sequence[int], y: int, x: int) -> Window:
    """The cells ``branch`` reads around ``(y, x)`` (its convolutions' receptive field, cut at the
    level's border; the whole level when it normalises over space or strides)."""
    h, w = int(level_shape[-2]), int(level_shape[-1])
    r = radius_of([branch])
    return (0, h, 0, w) if r is None else (max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1))


def support_of(branch: nn.Module, level_shape: Sequence[int], y: int, x: int) -> torch.Tensor:
    """``BoolTensor[h, w]``: the cells whose channels carry the cell's evidence (the convolutions' reach)."""
    h, w = int(level_shape[-2]), int(level_shape[-1])
    reach = reach_of([branch])
    support = torch.zeros(h, w, dtype=torch.bool)
    support[max(0, y - reach) : y + reach + 1, max(0, x - reach) : x + reach + 1] = True
    return support


def window_logit(branch: nn.Module, windows: torch.Tensor, cell: tuple[int, int], cls: int) -> torch.Tensor:
    """``FloatTensor[B]``: the class-``cls`` logit at ``cell = (y, x)`` (window coordinates) of
    ``branch`` run on ``windows`` ``FloatTensor[B, C, h, w]``."""
    return branch(windows)[:, cls, cell[0], cell[1]]
