"""Deletion and insertion curves (Petsiuk et al. 2018, RISE; D-RISE for detectors).

*Deletion* removes pixels from the image in order of decreasing CAM value (replacing them with a
neutral fill) and tracks how the explained detection's score falls; a faithful map makes it fall
fast, so a **low** area under the curve is good. *Insertion* starts from the all-fill image and
reveals pixels in the same order; a faithful map makes the score rise fast, so a **high** area is
good.

Contracts: the image is ``uint8 [H, W, 3]`` and the map ``float [H, W]`` of the *same* ``H, W``
(a map on a resized or padded grid is the classic wrong-image-size bug and is refused). The
scoring function takes a list of images and returns one score per image, so a detector can score
a whole curve in batched forwards (see :func:`detection_scorer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..datatypes import Curve, Detection
from ..errors import ExpectationError
from ..metrics import positive

if TYPE_CHECKING:
    from ..engine.engine import CamEngine

MODES = ("deletion", "insertion")


def perturbation_order(cam: np.ndarray, seed: int = 0) -> np.ndarray:
    """``int64 [H·W]`` flat pixel indices (``y · W + x``) by decreasing map value.

    Ties (a CAM has many equal zeros) are broken by a permutation drawn from ``seed``, not by
    pixel order: removing tied pixels row by row would sweep the image from the top and measure
    the sweep rather than the map.
    """
    pos = positive(cam).ravel()
    tiebreak = np.random.default_rng(seed).permutation(pos.size)
    return np.lexsort((tiebreak, -pos)).astype(np.int64)


def perturbed_images(
    image: np.ndarray,
    cam: np.ndarray,
    mode: str,
    steps: int = 16,
    fill: np.ndarray | Sequence[int] = (124, 116, 104),
    seed: int = 0,
) -> list[np.ndarray]:
    """The ``steps + 1`` images of a deletion or insertion curve.

    Image ``i`` has the first ``round(i / steps · H·W)`` pixels of :func:`perturbation_order`
    replaced by ``fill`` (deletion) or, starting from an all-``fill`` image, copied from ``image``
    (insertion). Image 0 of deletion is ``image``; image ``steps`` of insertion is ``image``.

    Args:
        image: ``uint8 [H, W, 3]``.
        cam: ``float [H, W]`` on the same pixel grid as ``image``.
        mode: ``"deletion"`` or ``"insertion"``.
        steps: number of steps (≥ 1).
        fill: ``uint8 [3]`` colour (default: ImageNet mean, what torchvision detectors normalise
            to zero) or a ``uint8 [H, W, 3]`` image (e.g. a blurred copy) to remove toward.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ExpectationError(f"`image` must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
    pos = positive(cam)
    if pos.shape != img.shape[:2]:
        raise ExpectationError(
            f"the map is {pos.shape[1]}x{pos.shape[0]} but the image is {img.shape[1]}x{img.shape[0]} (W x H); "
            "compute the map on the image's own pixel grid (undo resizing and padding) before perturbing"
        )
    if mode not in MODES:
        raise ExpectationError(f"`mode` must be one of {', '.join(MODES)}, got {mode!r}")
    if int(steps) != steps or steps < 1:
        raise ExpectationError(f"`steps` must be a whole number >= 1, got {steps!r}")
    h, w = pos.shape
    fill_arr = np.asarray(fill)
    if fill_arr.shape not in ((3,), img.shape):
        raise ExpectationError(f"`fill` must be an RGB colour [3] or an image {img.shape}, got shape {fill_arr.shape}")
    base = np.empty_like(img)
    base[...] = fill_arr.astype(np.uint8)
    order = perturbation_order(pos, seed)
    src, dst = (base, img) if mode == "deletion" else (img, base)
    out = []
    for i in range(steps + 1):
        n = int(round(i / steps * h * w))
        cur = dst.reshape(-1, 3).copy()
        cur[order[:n]] = src.reshape(-1, 3)[order[:n]]
        out.append(cur.reshape(h, w, 3))
    return out


def blurred(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """``uint8 [H, W, 3]`` Gaussian blur of ``image`` (default ``σ = max(H, W) / 16``): a fill that
    removes shape and texture but keeps the image's colours (RISE's insertion start)."""
    import cv2

    img = np.asarray(image)
    s = float(sigma) if sigma is not None else max(img.shape[:2]) / 16.0
    return cv2.GaussianBlur(img, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)


def trapezoid_auc(scores: Sequence[float]) -> float:
    """Area under ``scores`` sampled at ``0, 1/n, …, 1`` (``n = len(scores) − 1``), trapezoid rule."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size < 2:
        raise ExpectationError(f"a curve needs at least 2 points, got {s.size}")
    return float(((s[:-1] + s[1:]) / 2.0).sum() / (s.size - 1))


def perturbation_curve(
    image: np.ndarray,
    cam: np.ndarray,
    score: Callable[[list[np.ndarray]], Sequence[float]],
    mode: str,
    steps: int = 16,
    fill: np.ndarray | Sequence[int] = (124, 116, 104),
    seed: int = 0,
) -> Curve:
    """Score every image of :func:`perturbed_images` with one call of ``score`` and integrate.

    ``AUC = Σ_i (f(x_i) + f(x_{i+1})) / 2 · 1/steps`` with ``x_i`` the i-th image.
    """
    images = perturbed_images(image, cam, mode, steps, fill, seed)
    scores = [float(v) for v in score(images)]
    if len(scores) != len(images):
        raise ExpectationError(f"the scoring function returned {len(scores)} scores for {len(images)} images")
    fractions = tuple(i / steps for i in range(steps + 1))
    return Curve(mode, fractions, tuple(scores), trapezoid_auc(scores))


def detection_scorer(engine: CamEngine, target: Detection, iou_threshold: float = 0.5) -> Callable[[list[np.ndarray]], list[float]]:
    """Score of ``target`` on each image: the best detection with its label at IoU ≥
    ``iou_threshold`` with its box (0 when none), from batched forwards of ``engine.detect``."""
    from ..engine.context import best_match_score

    def score(images: list[np.ndarray]) -> list[float]:
        return [best_match_score(dets, target, iou_threshold) for dets in engine.detect(images)]

    return score
