"""Where around a box its evidence may lie: the regions of a context profile, and box-normalised crops.

Plain NumPy; nothing here runs a model. Two views of one object's surroundings:

* **Regions** (:func:`region_masks`): a ring around the box, cut into the 8 cells of a 3 × 3 tiling
  (``top-left`` … ``left``), everything farther out (``far``) and everything outside the box
  (``outside``). Discovery re-scores the detection with each region filled; the score it loses is
  the object's *context profile*. The ring is ``max(MIN_RING_PX, RING × side)`` wide on each axis,
  so a small object's ring still reaches a cue a few pixels past its corner (the shortcut twin's
  8-px tag lies 2–10 px past a corner of a 16-px triangle: a quarter of the side would miss it).
  Regions are clipped to the image; a region that falls wholly outside it is empty (and its
  profile entry ``None``).
* **Crops** (:func:`box_crop`): a map resampled onto a fixed grid over the box grown by
  :data:`CROP_MARGIN` of its size on each side, so crops of different objects line up in *box
  coordinates* and average into an atlas of where a class's evidence lies around its boxes.

Boxes are ``(x1, y1, x2, y2)`` in pixels, ``0 <= x1 < x2 <= W`` (:mod:`pytest_camaudit.datatypes`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np

SECTORS: tuple[str, ...] = ("top-left", "top", "top-right", "right", "bottom-right", "bottom", "bottom-left", "left")
"""The ring's 8 cells, clockwise from the top-left corner."""

PLACES: tuple[str, ...] = (*SECTORS, "far")
"""Where evidence can sit outside a box: a ring cell, or farther out."""

REGIONS: tuple[str, ...] = (*PLACES, "outside")
"""Every region a context profile re-scores, in profile order (``outside`` = everything outside the box)."""

_CELL: dict[str, tuple[int, int]] = {"top-left": (0, 0), "top": (0, 1), "top-right": (0, 2), "right": (1, 2),
                                     "bottom-right": (2, 2), "bottom": (2, 1), "bottom-left": (2, 0), "left": (1, 0)}
"""Sector → ``(row, column)`` in the 3 × 3 tiling of the ring's outer rectangle (the box is ``(1, 1)``)."""

WORDS: dict[str, str] = {
    "top-left": "beyond the top-left corner of the box",
    "top": "above the box",
    "top-right": "beyond the top-right corner of the box",
    "right": "right of the box",
    "bottom-right": "beyond the bottom-right corner of the box",
    "bottom": "below the box",
    "bottom-left": "beyond the bottom-left corner of the box",
    "left": "left of the box",
    "far": "farther out, beyond the ring around the box",
    "outside": "all around the box (its surroundings as a whole)",
}
"""How the report says where a region is."""

RING = 0.5
"""Ring width as a share of the box's side (per axis)."""

MIN_RING_PX = 12.0
"""Smallest ring width in pixels: covers a cue up to 12 px past the box."""

CROP_MARGIN = 0.5
"""A crop spans the box grown by this share of its size on each side: ``[-0.5, 1.5]`` in box units."""

CROP_CELLS = 20
"""A crop's side in cells: the box covers the central ``10 × 10``."""


def ring_width(box: Sequence[float]) -> tuple[float, float]:
    """``(rx, ry)``: the ring's width in pixels on each axis for ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(MIN_RING_PX, RING * (x2 - x1)), max(MIN_RING_PX, RING * (y2 - y1))


def _edges(lo: float, hi: float, pad: float, n: int) -> list[int]:
    """Integer pixel edges ``[outer lo, box lo, box hi, outer hi]`` on one axis, clipped to ``[0, n]``.

    The box keeps every pixel it touches (``floor`` / ``ceil``), so no region fills a pixel of the box.
    """
    return [min(max(v, 0), n) for v in (math.floor(lo - pad), math.floor(lo), math.ceil(hi), math.ceil(hi + pad))]


def region_masks(box: Sequence[float], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``bool [H, W]`` of every region of :data:`REGIONS` around ``box`` in an image of ``size = (H, W)``.

    The sectors tile the ring's outer rectangle minus the box; ``far`` is the image outside that
    rectangle; ``outside`` is the image outside the box. Regions are disjoint except ``outside``,
    which is their union.
    """
    h, w = size
    rx, ry = ring_width(box)
    xs = _edges(float(box[0]), float(box[2]), rx, w)
    ys = _edges(float(box[1]), float(box[3]), ry, h)
    out: dict[str, np.ndarray] = {}
    for name, (r, c) in _CELL.items():
        m = np.zeros((h, w), dtype=bool)
        m[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = True
        out[name] = m
    ring = np.zeros((h, w), dtype=bool)
    ring[ys[0] : ys[3], xs[0] : xs[3]] = True
    inner = np.zeros((h, w), dtype=bool)
    inner[ys[1] : ys[2], xs[1] : xs[2]] = True
    out["far"] = ~ring
    out["outside"] = ~inner
    return out


def outer_rect(box: Sequence[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` integer pixels of the ring's outer rectangle, clipped to an image of ``size = (H, W)``."""
    rx, ry = ring_width(box)
    xs = _edges(float(box[0]), float(box[2]), rx, size[1])
    ys = _edges(float(box[1]), float(box[3]), ry, size[0])
    return xs[0], ys[0], xs[3], ys[3]


def crop_window(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` in pixels that a crop of ``box`` covers (may extend past the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = CROP_MARGIN * (x2 - x1), CROP_MARGIN * (y2 - y1)
    return x1 - mx, y1 - my, x2 + mx, y2 + my


def box_crop(values: np.ndarray, box: Sequence[float], cells: int = CROP_CELLS) -> np.ndarray:
    """``float32 [cells, cells]``: the mean of ``values`` (``[H, W]``, non-negative) over each cell
    of :func:`crop_window` (area-weighted: pixels are ``[x, x+1) × [y, y+1)``); 0 past the image.
    Only the pixels the window touches are read (the others have zero weight)."""
    h, w = values.shape
    wx1, wy1, wx2, wy2 = crop_window(box)
    c0, c1 = _touched(wx1, wx2, w)
    r0, r1 = _touched(wy1, wy2, h)
    out = np.zeros((cells, cells), dtype=np.float64)
    if c1 > c0 and r1 > r0:
        cols = _coverage(wx1, wx2, c0, c1, cells)  # [cells, c1 - c0]
        rows = _coverage(wy1, wy2, r0, r1, cells)  # [cells, r1 - r0]
        out = rows @ np.asarray(values[r0:r1, c0:c1], dtype=np.float64) @ cols.T
    area = ((wx2 - wx1) / cells) * ((wy2 - wy1) / cells)
    return (out / max(area, 1e-12)).astype(np.float32)


def _touched(lo: float, hi: float, n: int) -> tuple[int, int]:
    """The pixels ``[first, stop)`` of ``[0, n)`` that ``[lo, hi)`` overlaps (empty when it misses them)."""
    first = min(n, max(0, math.floor(lo)))
    return first, max(first, min(n, math.ceil(hi)))


def _coverage(lo: float, hi: float, first: int, stop: int, cells: int) -> np.ndarray:
    """``float64 [cells, stop - first]``: how much of pixel ``j`` (``[j, j+1)``, ``first ≤ j < stop``) cell ``i`` of ``[lo, hi)`` covers."""
    edges = np.linspace(lo, hi, cells + 1)
    pix = np.arange(first, stop, dtype=np.float64)
    left = np.maximum(edges[:-1, None], pix[None, :])
    right = np.minimum(edges[1:, None], pix[None, :] + 1.0)
    return np.maximum(right - left, 0.0)


def encode_grid(grid: np.ndarray) -> str:
    """A ``[n, n]`` map in ``[0, ∞)`` as base64 of ``uint8`` values scaled to its maximum (all 0 when empty)."""
    g = np.asarray(grid, dtype=np.float64)
    top = float(g.max()) if g.size else 0.0
    q = np.zeros(g.shape, np.uint8) if not (top > 0 and math.isfinite(top)) else np.round(np.clip(g / top, 0, 1) * 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def decode_grid(text: str, cells: int = CROP_CELLS) -> np.ndarray:
    """``float32 [cells, cells]`` in ``[0, 1]`` from :func:`encode_grid`'s text.

    Raises:
        ValueError: the text is not base64 of ``cells × cells`` bytes.
    """
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != cells * cells:
        raise ValueError(f"a crop holds {cells * cells} bytes, got {len(raw)}")
    return np.frombuffer(raw, np.uint8).reshape(cells, cells).astype(np.float32) / 255.0


def crop_cells(cells: int = CROP_CELLS) -> dict[str, np.ndarray]:
    """``bool [cells, cells]`` of each of :data:`PLACES` (``far``: the crop's part past the ring at
    :data:`RING`) and ``box`` on a crop's grid, for reading a crop by region."""
    edge = np.linspace(-CROP_MARGIN, 1.0 + CROP_MARGIN, cells + 1)
    centre = (edge[:-1] + edge[1:]) / 2
    band = np.digitize(centre, [-RING, 0.0, 1.0, 1.0 + RING])  # 0 far, 1 before, 2 box, 3 after, 4 far
    out: dict[str, np.ndarray] = {}
    for name, (r, c) in _CELL.items():
        out[name] = (band[:, None] == r + 1) & (band[None, :] == c + 1)
    inside_ring = (band[:, None] >= 1) & (band[:, None] <= 3) & (band[None, :] >= 1) & (band[None, :] <= 3)
    out["far"] = ~inside_ring
    out["box"] = (band[:, None] == 2) & (band[None, :] == 2)
    return out
