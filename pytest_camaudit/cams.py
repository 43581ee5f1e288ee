"""CAM arithmetic on captured activations and gradients (no model calls here).

Maps are computed on a *common grid*: every feature level of one image brought onto the same
padded-canvas grid (see :func:`pytest_camaudit.alignment.levels_on_grid`) and stacked along
channels — the role grad-cam's ``fasterrcnn_reshape_transform`` plays, but on the finest grid the
budget allows instead of the coarsest (``'pool'``) one.

Two things are done differently from grad-cam, on purpose:

* **Sign.** The first principal component is defined up to sign, so grad-cam's EigenCAM returns
  the complement of the object about half the time (grad-cam issue #364). Here the component is
  oriented to correlate positively with a reference map: for EigenCAM, the detector's own
  detections (each box weighted by its score, :func:`orient_toward_boxes`) and, for an image with
  none, the mean absolute activation; for EigenGradCAM, the channel sum of
  ``gradient × activation``. The mean activation alone is not enough: on the shipped ``shapes``
  detector the cluttered background is more active than the objects, and a mean-oriented EigenCAM
  put 0–1 % of its mass in the ground-truth boxes of 12 held-out scenes where the box-oriented one
  puts 3.1× the boxes' share of the image on average (40 scenes, every one above chance). The sign
  is the only thing the detections choose; the shape of the map is the activations' own.
* **Degenerate input.** On constant activations the centred matrix is zero and grad-cam's SVD
  returns an arbitrary direction, then min-max scaling blows numerical noise up to a full-range
  map (or NaN). Here such a map is all zeros and flagged ``degenerate``, so a CAM-mass assertion
  fails and says why instead of measuring noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

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
    """Top eigenvector of a small symmetric PSD matrix (``float64 [k, k]``), deterministically:
    power iteration from the column of largest norm (a few hundred microseconds where the top
    eigenvalue stands out, as it does for activations), :func:`torch.linalg.eigh` when it has not
    converged after ``iterations`` steps (no clear gap)."""
    v = gram[:, int(torch.argmax(gram.diagonal()))].clone()
    norm = float(v.norm())
    if norm == 0.0:
        return torch.linalg.eigh(gram).eigenvectors[:, -1]
    v /= norm
    for _ in range(iterations):
        w = gram @ v
        w /= w.norm()
        if float(1.0 - abs(w @ v)) < tol:
            return w
        v = w
    return torch.linalg.eigh(gram).eigenvectors[:, -1]


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
            return _top_eigenvector((a.T @ a).double()).to(a.dtype)
        u = _top_eigenvector((a @ a.T).double()).to(a.dtype)
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


MAX_PCA_POSITIONS = 1024
"""When both the channel count and the grid exceed this, the principal direction is estimated on
the grid average-pooled to at most this many cells (every cell is still projected on it)."""


def principal_direction(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """First principal direction (``[C]``) of the positions of ``x`` (``FloatTensor[C, h, w]``)
    around their ``mean`` (``[C]``).

    Exact (small Gram matrix) when ``C`` or ``h·w`` is at most :data:`MAX_PCA_POSITIONS`. Beyond
    both — an R50-FPN's 1280 stacked channels on a 100×136 grid — the Gram matrix would cost
    ``h·w·C²`` (22 G multiply-adds, ~0.4 s on 2 CPU cores), so the direction is taken from the
    grid average-pooled to ≤ 1024 cells, a few milliseconds; ``tests/test_cams.py`` checks that
    the resulting map agrees with the exact one on a random-weight R50 at 480×640.
    """
    c, h, w = x.shape
    if c <= MAX_PCA_POSITIONS or h * w <= MAX_PCA_POSITIONS:
        return top_right_singular_vector((x.reshape(c, h * w) - mean[:, None]).T)
    k = 2
    while -(-h // k) * -(-w // k) > MAX_PCA_POSITIONS:
        k += 1
    pooled = torch.nn.functional.avg_pool2d(x[None], k, ceil_mode=True)[0].reshape(c, -1).T
    return top_right_singular_vector(pooled - pooled.mean(dim=0, keepdim=True))


def principal_projection(x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Project each position of ``x`` on its first principal component, oriented by ``reference``.

    Args:
        x: ``FloatTensor[C, h, w]``.
        reference: ``FloatTensor[h, w]``; the projection is flipped to correlate positively with it.

    Returns:
        ``(FloatTensor[h, w], degenerate)``; ``degenerate`` when ``x`` is constant over positions
        (every channel's range is below 1e-6 of the largest magnitude) or not finite.
    """
    c, h, w = x.shape
    x = x.float()
    flat = x.reshape(c, h * w)
    if flat.numel() == 0:
        return torch.zeros(h, w, dtype=torch.float32, device=x.device), True
    lo, hi = torch.aminmax(flat, dim=1)  # one pass; NaN and inf propagate into scale
    scale = max(float(lo.abs().max()), float(hi.abs().max()))
    if not math.isfinite(scale) or scale == 0.0 or float((hi - lo).max()) <= _DEGENERATE_RTOL * scale:
        return torch.zeros(h, w, dtype=torch.float32, device=x.device), True
    mean = flat.mean(dim=1)
    v = principal_direction(x, mean)
    proj = ((v[None, :] @ flat)[0] - v @ mean).double()
    ref = reference.reshape(-1).double()
    ref = ref - ref.mean()
    if float(proj @ ref) < 0:
        proj = -proj
    return proj.reshape(h, w).float(), False


def eigencam_component(stacked: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """EigenCAM before ReLU: the first principal component of ``|A|`` (``FloatTensor[C, h, w]``, as
    in grad-cam's ``fasterrcnn_reshape_transform``), oriented toward the mean activation."""
    a = stacked.abs()
    return principal_projection(a, a.mean(dim=0))


def eigencam(stacked: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """EigenCAM (Muhammad & Yeasin 2020) on stacked levels ``FloatTensor[C, h, w]``.

    ``|A|`` as in grad-cam's ``fasterrcnn_reshape_transform``, first principal component oriented
    toward the mean activation, then ReLU. Returns ``(FloatTensor[h, w] ≥ 0, degenerate)``. For a
    detector the ``eigencam`` method orients toward the detections instead (module docstring).
    """
    proj, degenerate = eigencam_component(stacked)
    return proj.clamp_min(0), degenerate


def eigengradcam(ga: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """EigenGradCAM: first principal component of ``gradient × activation`` (``FloatTensor[C, h, w]``).

    The product is formed per level at native resolution before levels meet on the common grid.
    Oriented toward ``Σ_c gradient × activation`` (positive = raises the explained score), then
    ReLU. All-zero gradients (the box did not draw on these levels) are degenerate.
    """
    proj, degenerate = principal_projection(ga, ga.sum(dim=0))
    return proj.clamp_min(0), degenerate


def orient_toward_boxes(signed: torch.Tensor, boxes: list[tuple[float, float, float, float]], weights: list[float]) -> torch.Tensor:
    """Flip ``signed`` (``FloatTensor[H, W]`` on the image's pixels, a principal component before
    ReLU) when it anti-correlates with the score-weighted union of ``boxes`` (``[x1, y1, x2, y2]``
    pixels). No boxes, or no correlation either way, leaves it as it is.
    """
    if not boxes:
        return signed
    h, w = signed.shape
    ref = torch.zeros(h, w, dtype=torch.float64, device=signed.device)
    for (x1, y1, x2, y2), weight in zip(boxes, weights):
        c0, c1 = max(0, int(np.floor(x1))), min(w, int(np.ceil(x2)))
        r0, r1 = max(0, int(np.floor(y1))), min(h, int(np.ceil(y2)))
        ref[r0:r1, c0:c1] += float(weight)
    ref -= ref.mean()
    return -signed if float((signed.double() * ref).sum()) < 0 else signed


def normalise(cam: torch.Tensor) -> np.ndarray:
    """``[H, W]`` non-negative map → ``float32`` numpy scaled to max 1 (zeros stay zeros)."""
    cam = torch.nan_to_num(cam.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0)
    top = float(cam.max()) if cam.numel() else 0.0
    out = (cam / top) if top > 0 else torch.zeros_like(cam)
    return out.detach().cpu().numpy().astype(np.float32)
