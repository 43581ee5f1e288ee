"""EigenCAM and EigenGradCAM: the first principal component of the activations (or of gradient ×
activation), oriented, on the image's pixels.

**Sign.** The first principal component is defined up to sign, so grad-cam's EigenCAM returns the
complement of the object about half the time (grad-cam issue #364). Here the component is oriented
to correlate positively with a reference map: for EigenCAM, the detector's own detections (each box
weighted by its score, :func:`orient_toward_boxes`) and, for an image with none, the mean absolute
activation; for EigenGradCAM, the channel sum of ``gradient × activation``. The mean activation
alone is not enough: on the shipped ``shapes`` detector the cluttered background is more active
than the objects: over 40 held-out scenes a mean-oriented EigenCAM puts 0.02× the boxes' share of
the image in the ground-truth boxes, the box-oriented one 2.9×, above chance in every scene
(``benchmarks/bench_eigencam_sign.py``). The sign is the only thing the detections choose; the
shape of the map is the activations' own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..datatypes import Box, CamMap, Detection, Geometry
from .maps import normalise
from .pca import as_levels, footprint_principal_component, level_principal_component
from .threads import one_thread

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis


def eigencam_component(
    levels: torch.Tensor | Mapping[str, torch.Tensor], geometry: Geometry | None = None, grid: tuple[int, int] | None = None
) -> tuple[torch.Tensor, bool]:
    """EigenCAM before ReLU: the first principal component of ``|A|`` (``|A|`` per level before
    the resample, as grad-cam's ``fasterrcnn_reshape_transform`` takes it), oriented toward the
    mean activation; the direction within :data:`MAX_PCA_POSITIONS`.

    Args:
        levels: name → ``FloatTensor[C_l, h_l, w_l]`` with ``geometry`` and ``grid``, or one stacked
            ``FloatTensor[C, h, w]`` on its own grid.

    Returns:
        ``(FloatTensor[h, w], degenerate)`` on ``grid``.
    """
    named, geo, g = as_levels(levels, geometry, grid)
    return level_principal_component(OrderedDict((k, v.abs()) for k, v in named.items()), geo, g, nonnegative=True)


def eigencam(
    levels: torch.Tensor | Mapping[str, torch.Tensor], geometry: Geometry | None = None, grid: tuple[int, int] | None = None
) -> tuple[torch.Tensor, bool]:
    """EigenCAM (Muhammad & Yeasin 2020): :func:`eigencam_component`, then ReLU.

    Returns ``(FloatTensor[h, w] ≥ 0, degenerate)``. For a detector the ``eigencam`` method orients
    the component toward the detections instead of the mean activation (module docstring).
    """
    proj, degenerate = eigencam_component(levels, geometry, grid)
    return proj.clamp_min(0), degenerate


def eigengradcam(
    ga: torch.Tensor | Mapping[str, torch.Tensor], geometry: Geometry | None = None, grid: tuple[int, int] | None = None
) -> tuple[torch.Tensor, bool]:
    """EigenGradCAM: first principal component of ``gradient × activation`` (per level
    ``FloatTensor[C_l, h_l, w_l]`` with ``geometry`` and ``grid``, or one stacked ``[C, h, w]``).

    The exact direction (a box's gradient is local, and its backward already costs about a
    forward), oriented toward ``Σ_c gradient × activation`` (positive = raises the explained
    score), then ReLU. All-zero gradients (the box did not draw on these levels) are degenerate.
    """
    proj, degenerate = footprint_principal_component(*as_levels(ga, geometry, grid))
    return proj.clamp_min(0), degenerate


def orient_toward_boxes(signed: torch.Tensor, boxes: list[Box], weights: list[float]) -> torch.Tensor:
    """Flip ``signed`` (``FloatTensor[H, W]`` on the image's pixels, a principal component before
    ReLU) when it anti-correlates with the score-weighted union of ``boxes`` (``[x1, y1, x2, y2]``
    pixels). No boxes, or no correlation either way, leaves it as it is.
    """
    if not boxes:
        return signed
    h, w = signed.shape
    values = signed.detach().cpu().numpy().astype(np.float64)
    # Σ signed · (ref − mean ref) for ref = Σ weight · box: box sums less the mean's share
    inside, covered = 0.0, 0.0
    for (x1, y1, x2, y2), weight in zip(boxes, weights, strict=True):
        c0, r0 = min(w, max(0, int(np.floor(x1)))), min(h, max(0, int(np.floor(y1))))
        c1, r1 = max(c0, min(w, int(np.ceil(x2)))), max(r0, min(h, int(np.ceil(y2))))
        inside += weight * float(values[r0:r1, c0:c1].sum())
        covered += weight * (r1 - r0) * (c1 - c0)
    correlation = inside - covered / (h * w) * float(values.sum())
    return -signed if correlation < 0 else signed




def eigencam_map(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    """The ``eigencam`` method: one class-agnostic map per image, oriented toward its detections
    (on one thread: :mod:`.threads`)."""
    with one_thread():
        proj, degenerate = eigencam_component(analysis.levels, analysis.geometry, analysis.grid)
        dets = analysis.detections
        signed = orient_toward_boxes(analysis.to_image(proj), [d.box for d in dets], [d.score for d in dets])
        return CamMap(normalise(signed), "eigencam", None, degenerate)  # normalise clips the negative side


def eigengradcam_map(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    """The ``eigengradcam`` method: the principal component of the box's gradient × activation."""
    if detection is None:
        raise ValueError("eigengradcam explains one detection; pass `detection=`")
    grads = analysis.gradients(detection)  # the model's backward: the user's thread count
    with one_thread():  # the maths on it: :mod:`.threads`
        products = OrderedDict((k, grads[k] * analysis.levels[k]) for k in grads)
        grid_map, degenerate = eigengradcam(products, analysis.geometry, analysis.grid)
        return CamMap(normalise(analysis.to_image(grid_map)), "eigengradcam", detection.index, degenerate)
