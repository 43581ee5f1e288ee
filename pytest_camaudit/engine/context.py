"""The context check's arithmetic: re-score detections with parts of the image filled.

:func:`rescore_without_context` fills everything outside each box (the context check);
:func:`rescore_filled` fills given regions around one detection (discovery's context profile).

Each checked box costs one extra detector forward on a copy of the image where every pixel outside
the box (plus a margin) is set to the model's neutral fill colour. The copies of one image share its
size, hence its resize and padding, so they go through the detector in batches
(:meth:`~pytest_camaudit.engine.engine.CamEngine.detect`, ``--camaudit-batch-size``); the scores
equal one-at-a-time scores to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torchvision.ops import box_iou

from ..datatypes import ContextResult, Detection

if TYPE_CHECKING:
    from collections.abc import Callable


def best_match_score(detections: Sequence[Detection], target: Detection, iou_threshold: float = 0.5) -> float:
    """Highest score among ``detections`` with ``target``'s label and IoU ≥ threshold with its box."""
    same = [d for d in detections if d.label == target.label]
    if not same:
        return 0.0
    iou = box_iou(torch.tensor([d.box for d in same]), torch.tensor([target.box]))[:, 0]
    scores = [d.score for d, i in zip(same, iou.tolist(), strict=True) if i >= iou_threshold]
    return max(scores, default=0.0)


def rescore_without_context(
    pixels: np.ndarray,
    detections: Sequence[Detection],
    fill: np.ndarray,
    detect: Callable[[list[np.ndarray]], list[list[Detection]]],
    margin: float = 0.05,
) -> list[ContextResult]:
    """Re-score ``detections`` of the image ``pixels`` (``uint8 [H, W, 3]``) with everything outside
    each box (± ``margin`` × box size) filled with ``fill`` (``uint8 [3]``): one ``detect`` image per box."""
    if not detections:
        return []
    h, w = pixels.shape[:2]
    masked, kept = [], []
    for d in detections:
        x1, y1, x2, y2 = d.box
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        k = (max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my))), min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my))))
        img = np.empty_like(pixels)
        img[...] = fill
        img[k[1] : k[3], k[0] : k[2]] = pixels[k[1] : k[3], k[0] : k[2]]
        masked.append(img)
        kept.append(k)
    return [ContextResult(d, d.score, best_match_score(dets, d), k, img)
            for d, k, img, dets in zip(detections, kept, masked, detect(masked), strict=True)]


def rescore_filled(
    pixels: np.ndarray,
    detection: Detection,
    masks: Sequence[np.ndarray],
    fill: np.ndarray,
    detect: Callable[[list[np.ndarray]], list[list[Detection]]],
) -> list[float]:
    """``detection``'s score on copies of ``pixels`` (``uint8 [H, W, 3]``) with each of ``masks``
    (``bool [H, W]``) set to ``fill`` (``uint8 [3]``): the best same-label score at IoU ≥ 0.5 with its
    box, 0 when none. One ``detect`` image per mask (the engine batches them)."""
    if not masks:
        return []
    images = []
    for mask in masks:
        img = pixels.copy()
        img[mask] = fill
        images.append(img)
    return [best_match_score(dets, detection) for dets in detect(images)]
