"""Localisation metrics on a CAM and boxes.

Conventions: a map is ``float [H, W]`` indexed ``map[y, x]``; a box is ``(x1, y1, x2, y2)`` in
pixel coordinates where pixel ``(x, y)`` covers ``[x, x + 1) × [y, y + 1)``. Boxes are not
rounded: a pixel partly inside a box counts with the fraction of its area inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Box = Sequence[float]


def _axis_coverage(lo: float, hi: float, n: int) -> np.ndarray:
    """``float [n]``: fraction of each pixel ``[i, i + 1)`` inside ``[lo, hi]`` (clipped to ``[0, n]``)."""
    edges = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0.0, 1.0)


def box_weights(shape: tuple[int, int], box: Box) -> np.ndarray:
    """``float64 [H, W]`` area of each pixel inside ``box`` (1 inside, fractions on the border)."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.outer(_axis_coverage(y1, y2, h), _axis_coverage(x1, x2, w))


def box_mass(cam: np.ndarray, box: Box) -> float:
    """Energy pointing game / relevance mass accuracy of one box.

    ``mass = Σ_{p ∈ box} max(cam_p, 0) / Σ_p max(cam_p, 0)``, pixels weighted by the fraction of
    their area inside the box. ``NaN`` when the map has no positive mass (nothing to measure).

    Args:
        cam: ``float [H, W]``.
        box: ``(x1, y1, x2, y2)`` in pixels of ``cam``'s grid.
    """
    pos = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float64), nan=0.0), 0.0, None)
    total = float(pos.sum())
    if total <= 0.0 or not math.isfinite(total):
        return float("nan")
    return float((pos * box_weights(pos.shape, box)).sum() / total)


def box_area_fraction(shape: tuple[int, int], box: Box) -> float:
    """Share of the image's area inside ``box``: the box mass a uniform map would get (chance)."""
    return float(box_weights(shape, box).sum() / (shape[0] * shape[1]))
