"""The plain values every layer passes around: boxes, detections, geometry, maps, figure inputs.

Nothing here runs a model. The classes are frozen dataclasses of numbers, tuples and numpy
arrays, so the upper layers (methods, audit, dataset, report, plugin) type against them without
importing the engine or a detector. Conventions, the same everywhere in the package:

* A box is ``(x1, y1, x2, y2)`` in pixels of the image it belongs to, ``0 <= x1 < x2 <= W``; pixel
  ``(x, y)`` covers ``[x, x + 1) × [y, y + 1)``.
* A map is ``float32 [H, W]`` on the *original* image's pixel grid, indexed ``map[y, x]``.
* An image is ``uint8 [H, W, 3]`` RGB.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .records import SCORE_THRESHOLD

if TYPE_CHECKING:
    import torch

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in pixels."""

LevelsFn = Callable[[Any], "OrderedDict[str, torch.Tensor]"]
"""Turns a target layer's output into ordered ``name → FloatTensor[B, C, h, w]`` feature levels."""


@dataclass(frozen=True)
class Geometry:
    """How one image travelled into the detector's backbone.

    The image of ``original = (H0, W0)`` pixels is resized to ``resized = (Hr, Wr)`` and placed in
    a canvas of ``padded = (Hp, Wp)`` pixels with its top-left corner at ``offset = (top, left)``:
    torchvision and DETR pad at the bottom and right (offset ``(0, 0)``); ultralytics' letterbox
    centres the image (e.g. 720×1280 → 360×640 in a 384×640 canvas at ``top = 12``). A feature
    level of ``h × w`` cells covers the whole canvas.

    Attributes:
        original: ``(H0, W0)`` of the image the user passed.
        resized: ``(Hr, Wr)`` of the image inside the canvas.
        padded: ``(Hp, Wp)`` of the canvas the backbone saw.
        offset: ``(top, left)`` of the resized image in the canvas, in canvas pixels.
    """

    original: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]
    offset: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def identity(cls, height: int, width: int) -> Geometry:
        """No resize, no padding (a detector that feeds the image to its backbone as is)."""
        return cls((height, width), (height, width), (height, width))

    @property
    def scale(self) -> tuple[float, float]:
        """``(sy, sx)``: canvas pixels per original pixel."""
        (h0, w0), (hr, wr) = self.original, self.resized
        return hr / h0, wr / w0

    def to_canvas(self, box: Sequence[float]) -> Box:
        """An original-pixel box in canvas pixels."""
        (sy, sx), (top, left) = self.scale, self.offset
        x1, y1, x2, y2 = (float(v) for v in box)
        return (x1 * sx + left, y1 * sy + top, x2 * sx + left, y2 * sy + top)

    def to_original(self, box: Sequence[float]) -> Box:
        """A canvas-pixel box in original pixels (the inverse of :meth:`to_canvas`)."""
        (sy, sx), (top, left) = self.scale, self.offset
        x1, y1, x2, y2 = (float(v) for v in box)
        return ((x1 - left) / sx, (y1 - top) / sy, (x2 - left) / sx, (y2 - top) / sy)


@dataclass(frozen=True)
class Detection:
    """One detection in original-image pixels.

    Attributes:
        index: position in the detector's output for this image (score descending).
        box: ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2 <= W``.
        label: class index; ``label_name`` its name.
        score: confidence in ``[0, 1]``.
    """

    index: int
    box: Box
    label: int
    label_name: str
    score: float

    def describe(self) -> str:
        x1, y1, x2, y2 = self.box
        return f"{self.label_name} {self.score:.3f} at [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]"


@dataclass(frozen=True)
class PredictedMask:
    """A detector's own mask of one detection (Mask R-CNN's ``masks`` output, thresholded at 0.5 as torchvision
    draws it), kept as the window of the image it lies in.

    Attributes:
        x0, y0: the window's top-left pixel.
        window: ``bool [h, w]``: the mask's pixels inside the window (outside it the mask is empty).
    """

    x0: int
    y0: int
    window: np.ndarray

    def mask(self, height: int, width: int) -> np.ndarray:
        """``bool [height, width]``: the mask on the whole image."""
        out = np.zeros((height, width), dtype=bool)
        h, w = self.window.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.window[: height - self.y0, : width - self.x0]
        return out


@dataclass(frozen=True)
class CamMap:
    """A CAM on the original image's pixel grid.

    Attributes:
        values: ``float32 [H, W]``, non-negative, max-normalised to 1 (all zeros when degenerate).
        method: the method's registry name (``"eigencam"``…).
        target: ``None`` for a class-agnostic map, else the detection index it explains.
        degenerate: True when the activations carried no signal (constant / all zero).
    """

    values: np.ndarray
    method: str
    target: int | None = None
    degenerate: bool = False


@dataclass(frozen=True)
class ContextResult:
    """A detection re-scored on the image with everything outside its box (+ margin) filled.

    Attributes:
        detection: the detection checked.
        score_with: its score on the full image.
        score_without: the best score of a same-label detection at IoU ≥ 0.5 with its box on the
            filled image (0 when none).
        kept: ``(x1, y1, x2, y2)`` integer pixel region kept (box plus margin, clipped).
        image: ``uint8 [H, W, 3]`` the filled image the detector saw.
    """

    detection: Detection
    score_with: float
    score_without: float
    kept: tuple[int, int, int, int]
    image: np.ndarray

    @property
    def drop(self) -> float:
        return self.score_with - self.score_without


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve.

    Attributes:
        mode: ``"deletion"`` or ``"insertion"``.
        fractions: ``[steps + 1]`` share of the pixels removed (deletion) or revealed (insertion).
        scores: ``[steps + 1]`` the tracked score on each image.
        auc: trapezoidal area under ``scores`` over ``fractions`` (``fractions`` span ``[0, 1]``).
    """

    mode: str
    fractions: tuple[float, ...]
    scores: tuple[float, ...]
    auc: float


# -- an annotated object's own outline (read by the dataset formats, drawn and measured later) ------


@dataclass(frozen=True)
class PolygonOutline:
    """An object's outline as polygons in image pixels: the union of ``rings``.

    Each ring is flat, ``(x1, y1, x2, y2, …)`` with at least 3 points, as COCO writes a polygon
    (COCO ``segmentation`` lists, YOLO segmentation labels once de-normalised). Several rings are
    parts of one object (an occluded object cut in two), not holes.
    """

    rings: tuple[tuple[float, ...], ...]

    def bounds(self) -> Box:
        """``(x1, y1, x2, y2)``: the smallest box around every ring (how ultralytics boxes a polygon)."""
        xs = [v for ring in self.rings for v in ring[0::2]]
        ys = [v for ring in self.rings for v in ring[1::2]]
        return (min(xs), min(ys), max(xs), max(ys))

    def mask(self, height: int, width: int) -> np.ndarray:
        """``bool [height, width]``: pixel ``(x, y)`` is inside when its centre ``(x + ½, y + ½)`` lies inside a ring
        (even–odd rule), so a ring along a box's integer edges covers exactly the box's pixels."""
        out = np.zeros((height, width), dtype=bool)
        for ring in self.rings:
            _fill_ring(out, np.asarray(ring, dtype=np.float64).reshape(-1, 2))
        return out


def _fill_ring(out: np.ndarray, pts: np.ndarray) -> None:
    """Set the pixels of ``out`` whose centres lie inside the polygon ``pts`` (``float [N, 2]`` of x, y).

    Even–odd rule, all edges at once: an edge crossing a pixel row at ``x_at`` toggles the row's
    pixels with centre ``cx < x_at`` (a prefix of the row: ``searchsorted``), so a pixel is inside
    when an odd number of crossings lie to its right. The same comparisons as walking the edges
    one by one (the same ``x_at`` in float64), without a Python loop over the edges.
    """
    h, w = out.shape
    x0, y0 = max(0, int(np.floor(pts[:, 0].min()))), max(0, int(np.floor(pts[:, 1].min())))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max()))), min(h, int(np.ceil(pts[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return
    cx, cy = np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5
    nxt = np.roll(pts, -1, axis=0)
    sloped = pts[:, 1] != nxt[:, 1]  # a horizontal edge crosses no row
    (xa, ya), (xb, yb) = pts[sloped].T, nxt[sloped].T
    row, edge = np.nonzero((ya[None, :] > cy[:, None]) != (yb[None, :] > cy[:, None]))  # [rows, edges] crossings
    x_at = xa[edge] + (cy[row] - ya[edge]) * (xb[edge] - xa[edge]) / (yb[edge] - ya[edge])
    toggles = np.zeros((y1 - y0, x1 - x0 + 1), dtype=np.int64)  # toggles[r, k]: crossings covering the row's first k pixels
    np.add.at(toggles, (row, np.searchsorted(cx, x_at, side="left")), 1)
    right = np.cumsum(toggles[:, ::-1], axis=1)[:, ::-1][:, 1:]  # pixel j: crossings with k > j
    out[y0:y1, x0:x1] |= (right & 1).astype(bool)


@dataclass(frozen=True)
class MaskOutline:
    """An object's outline as a binary mask, kept as COCO's compressed run-length encoding.

    Attributes:
        size: ``(height, width)`` of the image the mask covers.
        counts: the compressed RLE string (pycocotools' form), decoded only by :meth:`mask`.
    """

    size: tuple[int, int]
    counts: bytes

    def mask(self, height: int, width: int) -> np.ndarray:
        """``bool [height, width]``, decoded with pycocotools.

        Raises:
            ValueError: the mask was made for an image of another size.
        """
        if (height, width) != self.size:
            raise ValueError(f"the mask covers a {self.size[1]}x{self.size[0]} image, not {width}x{height}")
        import warnings

        from pycocotools import mask as rle

        with warnings.catch_warnings():  # pycocotools' decoded-mask buffer predates numpy 2's `copy=` protocol: it warns, harmlessly
            warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning)
            return np.array(rle.decode({"size": list(self.size), "counts": self.counts}), dtype=bool)

    def bounds(self) -> Box:
        """``(x1, y1, x2, y2)`` of the mask's pixels (pycocotools' ``toBbox``)."""
        from pycocotools import mask as rle

        x, y, bw, bh = (float(v) for v in rle.toBbox({"size": list(self.size), "counts": self.counts}))
        return (x, y, x + bw, y + bh)


ObjectOutline = PolygonOutline | MaskOutline
"""An annotated object's outline: polygons in image pixels, or a run-length-encoded mask."""


# -- what a case card shows, as plain inputs for the report (the only layer that draws) ----------


@dataclass(frozen=True)
class Outline:
    """A box to outline on a picture, with an optional tag."""

    box: Box
    text: str = ""


@dataclass(frozen=True)
class MapPicture:
    """A map overlaid on the case's image.

    Attributes:
        name: the figure's name within its case (``"cam-eigencam-0"``…), unique per case.
        title, caption: what the card says about it.
        values: ``float [H, W]`` in ``[0, 1]`` on the image's pixels.
        outlines: boxes drawn over the overlay (the box the map explains, regressed objects…).
    """

    name: str
    title: str
    values: np.ndarray
    outlines: tuple[Outline, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class ImagePicture:
    """Another image of the same size as the case's (e.g. the image without context)."""

    name: str
    title: str
    pixels: np.ndarray
    outlines: tuple[Outline, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class CaseDrawing:
    """Everything the report needs to draw one case's card, as plain data.

    Attributes:
        pixels: ``uint8 [H, W, 3]`` the image.
        detections: detections to outline (above the score threshold), with ``matched`` the
            indices an assertion matched (drawn thicker).
        expected: ``(label, box)`` of the objects the test expected.
        score_threshold: the threshold ``detections`` were filtered at (for the caption).
        pictures: maps and other images, in card order.
        regions: ``[H, W]`` masks (> 0 inside) of the objects' outlines a mass was measured in, outlined on
            the detections figure and on every map.
    """

    pixels: np.ndarray
    detections: tuple[Detection, ...] = ()
    matched: frozenset[int] = frozenset()
    expected: tuple[tuple[str, Box], ...] = ()
    score_threshold: float = SCORE_THRESHOLD
    pictures: tuple[MapPicture | ImagePicture, ...] = field(default_factory=tuple)
    regions: tuple[np.ndarray, ...] = ()
