"""CAM arithmetic on captured activations and gradients (no model calls here).

Maps are computed on a *common grid*: every feature level of one image brought onto the same
padded-canvas grid (see :func:`pytest_camaudit.alignment.levels_on_grid`) and stacked along
channels — the role grad-cam's ``fasterrcnn_reshape_transform`` plays (``|A|`` first, then the
resample, as there), but on the finest grid the budget allows instead of the coarsest (``'pool'``)
one. The stack is never built at full size for the principal component
(:func:`level_principal_component`): each level is projected at its own resolution and only the
one-channel results are resampled, and where the grid is large the direction is estimated on a
coarser level grid (:data:`MAX_PCA_POSITIONS`). On the ``shapes`` detector this takes the EigenCAM
from 4.0 ms to about 1 ms per image (``benchmarks/bench_overhead.py``), at r ≥ 0.999 to the exact map.

Two things are done differently from grad-cam, on purpose:

* **Sign.** The first principal component is defined up to sign, so grad-cam's EigenCAM returns
  the complement of the object about half the time (grad-cam issue #364). Here the component is
  oriented to correlate positively with a reference map: for EigenCAM, the detector's own
  detections (each box weighted by its score, :func:`orient_toward_boxes`) and, for an image with
  none, the mean absolute activation; for EigenGradCAM, the channel sum of
  ``gradient × activation``. The mean activation alone is not enough: on the shipped ``shapes``
  detector the cluttered background is more active than the objects: over 40 held-out scenes a
  mean-oriented EigenCAM puts 0.02× the boxes' share of the image in the ground-truth boxes, the
  box-oriented one 2.9×, above chance in every scene (``benchmarks/eigencam_sign.py``). The sign
  is the only thing the detections choose; the shape of the map is the activations' own.
* **Degenerate input.** On constant activations the centred matrix is zero and grad-cam's SVD
  returns an arbitrary direction, then min-max scaling blows numerical noise up to a full-range
  map (or NaN). Here such a map is all zeros and flagged ``degenerate``, so a CAM-mass assertion
  fails and says why instead of measuring noise.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .alignment import Geometry, common_grid, levels_on_grid

_DEGENERATE_RTOL = 1e-6


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


def _top_eigenvector(gram: torch.Tensor, iterations: int = 500, tol: float = 1e-13) -> torch.Tensor:
    """Top eigenvector of a small symmetric PSD matrix (``[k, k]``, returned as float64 on its
    device), deterministically: power iteration in NumPy float64 from the column of largest norm
    (tens of microseconds where the top eigenvalue stands out, as it does for activations; NumPy
    because each step is a few microsecond-sized operations), ``numpy.linalg.eigh`` when it has not
    converged after ``iterations`` steps (no clear gap)."""
    g = gram.detach().double().cpu().numpy()
    v = g[:, int(np.argmax(np.diagonal(g)))].copy()
    norm = float(np.linalg.norm(v))
    top = None
    if norm > 0.0:
        v /= norm
        for _ in range(iterations):
            w = g @ v
            w /= np.linalg.norm(w)
            if 1.0 - abs(float(w @ v)) < tol:
                top = w
                break
            v = w
    if top is None:
        top = np.linalg.eigh(g)[1][:, -1]
    return torch.from_numpy(np.ascontiguousarray(top)).to(gram.device)


def top_right_singular_vector(a: torch.Tensor, iterations: int = 40, tol: float = 1e-12) -> torch.Tensor:
    """First right singular vector of ``a`` (``[N, C]``), deterministically.

    When one side is small (≤ 1024) this is the top eigenvector of the small Gram matrix
    (``AᵀA`` or ``AAᵀ``, accumulated in ``a``'s dtype and solved in float64), exact and far
    cheaper than an SVD of ``A``. Otherwise subspace iteration on a 4-column block from a
    fixed-seed start, stopped when the leading direction no longer moves.
    """
    n, c = a.shape
    if min(n, c) <= 1024:
        if c <= n:
            return _top_eigenvector(a.T @ a).to(a.dtype)
        u = _top_eigenvector(a @ a.T).to(a.dtype)
        v = a.T @ u
        return v / v.norm()
    gen = torch.Generator(device="cpu").manual_seed(0)
    block = torch.randn(c, 4, generator=gen, dtype=a.dtype).to(a.device)
    top = block[:, 0]
    for _ in range(iterations):
        block, _ = torch.linalg.qr(a.T @ (a @ block))
        _, _, vh = torch.linalg.svd(a @ block, full_matrices=False)  # Rayleigh–Ritz on the block
        new = block @ vh[0]
        done = float(1.0 - abs(new @ top)) < tol
        top = new
        if done:
            break
    return top


MAX_PCA_POSITIONS = 256
"""Where the map's grid has more cells than this, the EigenCAM direction is estimated on the finest
feature-level grid with at most this many cells (every cell of the map's grid is still projected on
it): a 10×10 grid for the ``shapes`` detector's 40×40 map, 13×17 for an R50-FPN's 100×136 one."""

MIN_PCA_POSITIONS = 16
"""A direction grid with fewer cells than this says too little: the map's own grid is used."""


def direction_grid(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int], max_positions: int | None
) -> tuple[int, int]:
    """The grid the principal direction is estimated on: ``grid`` itself when it has at most
    ``max_positions`` cells (or ``max_positions`` is None), else the finest level grid within the
    budget, unless that has fewer than :data:`MIN_PCA_POSITIONS` cells."""
    cells = grid[0] * grid[1]
    if max_positions is None or cells <= max_positions:
        return grid
    coarse = common_grid(levels, geometry, max_positions)
    n = coarse[0] * coarse[1]
    return coarse if MIN_PCA_POSITIONS <= n < cells else grid


def _centred_stack(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int]
) -> tuple[torch.Tensor, float, float]:
    """The levels stacked on ``grid`` and centred per channel (``[ΣC, h·w]``), with the largest
    magnitude of the stack and the largest deviation from a channel's mean (NaN when not finite)."""
    stack = levels_on_grid(levels, geometry, grid)
    flat = stack.reshape(stack.shape[0], grid[0] * grid[1])
    centred = flat - flat.mean(dim=1, keepdim=True)
    if flat.numel() == 0:
        return centred, 0.0, 0.0  # no channels or no cells: nothing to explain
    scale, spread = torch.stack([flat.abs().max(), centred.abs().max()]).tolist()
    return centred, scale, spread


def level_principal_component(
    levels: Mapping[str, torch.Tensor],
    geometry: Geometry,
    grid: tuple[int, int],
    max_positions: int | None = MAX_PCA_POSITIONS,
) -> tuple[torch.Tensor, bool]:
    """First principal component of ``levels`` stacked on ``grid``, computed without stacking them there.

    The stack on a grid is linear in each level (area averages and bilinear samples), so the
    projection of the stack on a direction ``v`` is the sum over levels of ``v_l · level``
    (one channel each, at native resolution) brought onto the grid: five one-channel resamples
    instead of resampling every channel. The direction itself comes from the levels stacked on
    :func:`direction_grid` (exact when that is ``grid``; ``max_positions=None`` forces it; when the
    coarse stack is constant the direction is looked for on ``grid`` itself).

    Args:
        levels: name → ``FloatTensor[C_l, h_l, w_l]`` of one image.
        geometry: the image's geometry.
        grid: ``(h, w)`` of the map's common grid.
        max_positions: cell budget of the direction grid, see :data:`MAX_PCA_POSITIONS`.

    Returns:
        ``(FloatTensor[h, w], degenerate)``: the centred projection, oriented to correlate
        positively with the channel sum of the stack. ``degenerate`` (and all zeros) when the stack
        is not finite, or constant over positions — no channel deviates from its mean by more than
        ``1e-6`` of the stack's largest magnitude — or its projection has no such range on ``grid``.
    """
    levels = OrderedDict((k, v.float()) for k, v in levels.items())
    zeros = torch.zeros(grid, dtype=torch.float32, device=next(iter(levels.values())).device)
    coarse_grid = direction_grid(levels, geometry, grid, max_positions)
    centred, scale, spread = _centred_stack(levels, geometry, coarse_grid)
    if spread <= _DEGENERATE_RTOL * scale and coarse_grid != grid:  # no variation at this scale: look closer
        centred, scale, spread = _centred_stack(levels, geometry, grid)
    if not (math.isfinite(scale) and math.isfinite(spread)) or scale == 0.0 or spread <= _DEGENERATE_RTOL * scale:
        return zeros, True
    v = top_right_singular_vector(centred.T)
    weights = torch.stack([v, torch.ones_like(v)])  # [2, ΣC]: the direction, and a channel sum
    per_level: OrderedDict[str, torch.Tensor] = OrderedDict()
    offset = 0
    for name, t in levels.items():
        c = t.shape[0]
        per_level[name] = (weights[:, offset : offset + c] @ t.reshape(c, -1)).reshape(2, *t.shape[1:])
        offset += c
    both = levels_on_grid(per_level, geometry, grid)  # [2 L, h, w]: projection, channel sum per level
    proj = both[0::2].sum(dim=0)
    proj -= proj.mean()
    ref = both[1::2].sum(dim=0)
    width, correlation = torch.stack([proj.max() - proj.min(), (proj * (ref - ref.mean())).sum()]).tolist()
    if not math.isfinite(width) or width <= _DEGENERATE_RTOL * scale:
        return zeros, True  # not finite, or it varies only at a scale the grid averages out
    return (-proj if correlation < 0 else proj), False


def _as_levels(
    x: torch.Tensor | Mapping[str, torch.Tensor], geometry: Geometry | None, grid: tuple[int, int] | None
) -> tuple[Mapping[str, torch.Tensor], Geometry, tuple[int, int]]:
    """A stacked ``FloatTensor[C, h, w]`` is one level on its own grid; levels come with theirs."""
    if isinstance(x, torch.Tensor):
        h, w = x.shape[-2:]
        return {"stack": x}, Geometry.identity(h, w), (h, w)
    if geometry is None or grid is None:
        raise ValueError("levels given by name need their `geometry` and the `grid` of the map")
    return x, geometry, grid


def principal_projection(x: torch.Tensor, max_positions: int | None = None) -> tuple[torch.Tensor, bool]:
    """:func:`level_principal_component` of one stacked ``FloatTensor[C, h, w]`` on its own grid
    (exact direction by default): ``(FloatTensor[h, w], degenerate)``."""
    return level_principal_component(*_as_levels(x, None, None), max_positions)


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
    named, geo, g = _as_levels(levels, geometry, grid)
    return level_principal_component(OrderedDict((k, v.abs()) for k, v in named.items()), geo, g)


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
    proj, degenerate = level_principal_component(*_as_levels(ga, geometry, grid), max_positions=None)
    return proj.clamp_min(0), degenerate


def orient_toward_boxes(signed: torch.Tensor, boxes: list[tuple[float, float, float, float]], weights: list[float]) -> torch.Tensor:
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
    for (x1, y1, x2, y2), weight in zip(boxes, weights):
        c0, r0 = min(w, max(0, int(np.floor(x1)))), min(h, max(0, int(np.floor(y1))))
        c1, r1 = max(c0, min(w, int(np.ceil(x2)))), max(r0, min(h, int(np.ceil(y2))))
        inside += weight * float(values[r0:r1, c0:c1].sum())
        covered += weight * (r1 - r0) * (c1 - c0)
    correlation = inside - covered / (h * w) * float(values.sum())
    return -signed if correlation < 0 else signed


def normalise(cam: torch.Tensor) -> np.ndarray:
    """``[H, W]`` map → ``float32`` numpy, negatives and non-finite values zeroed, scaled to max 1
    (all zeros stay zeros)."""
    values = np.nan_to_num(cam.detach().float().cpu().numpy(), nan=0.0, posinf=0.0, neginf=0.0)  # a copy
    np.maximum(values, 0.0, out=values)
    top = float(values.max()) if values.size else 0.0
    if top > 0:
        values /= top
    return values.astype(np.float32, copy=False)
