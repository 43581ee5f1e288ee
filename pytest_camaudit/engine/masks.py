"""The masks a detector predicts itself (Mask R-CNN), kept per detection as the window they lie in.

torchvision's Mask R-CNN returns ``masks``: ``FloatTensor[N, 1, H, W]`` probabilities pasted on the
original image, one per detection. Kept whole they would cost ``N × H × W`` floats per image (100
detections of a 480 × 640 image: 123 MB); a mask lies inside its detection's box (pasted in the box
grown by one mask cell), so each is kept as a ``bool`` window over its box grown by
:data:`MARGIN` of its size: a few kB per detection.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..datatypes import Detection, PredictedMask

MARGIN = 0.25
"""Share of a box's width (height) the kept window extends beyond each side of the box."""

THRESHOLD = 0.5
"""Probability at or above which a pixel is in the mask (torchvision's ``draw_segmentation_masks`` examples' cut)."""


def predicted_masks(output: dict[str, Any], detections: list[Detection], height: int, width: int) -> dict[int, PredictedMask]:
    """Each detection's mask from a detector output with ``masks`` (``[N, 1, H, W]`` or ``[N, H, W]``, on the
    original ``height × width`` pixels); empty when the output has none or of another shape."""
    masks = output.get("masks")
    if not isinstance(masks, torch.Tensor) or len(masks) != len(detections) or masks.shape[-2:] != (height, width):
        return {}
    masks = masks.detach().reshape(len(detections), height, width)
    out: dict[int, PredictedMask] = {}
    for d in detections:
        x1, y1, x2, y2 = d.box
        mx, my = MARGIN * (x2 - x1) + 1, MARGIN * (y2 - y1) + 1
        x0, y0 = max(0, math.floor(x1 - mx)), max(0, math.floor(y1 - my))
        xe, ye = min(width, math.ceil(x2 + mx)), min(height, math.ceil(y2 + my))
        window = (masks[d.index, y0:ye, x0:xe] >= THRESHOLD).cpu().numpy()
        out[d.index] = PredictedMask(x0, y0, window)
    return out
