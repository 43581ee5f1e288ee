"""Probe detectors with known behaviour, for alignment and engine tests.

``BrightSpotProbe`` follows the detector protocol: a torchvision ``GeneralizedRCNNTransform``
(resize + pad to a multiple of 32, mean 0 / std 1 so black stays 0 and padding is 0) and a
backbone that returns average-pooled brightness at strides 4, 8 and 16 as an FPN-like dict.
On a black image with one white square, every level peaks at the square, so a correctly
aligned EigenCAM peaks there too.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

SPOTS = [(203, 317, (181, 290)), (157, 419, (140, 401)), (301, 173, (283, 25)), (161, 161, (20, 143))]
"""``(height, width, spot centre (y, x))``: odd, non-square images (and one square), spots near edges."""


def spot_image(h: int, w: int, cy: int, cx: int, r: int = 4) -> np.ndarray:
    """``uint8 [h, w, 3]`` black with a white ``(2r + 1)``-pixel square centred at ``(cy, cx)``."""
    img = np.zeros((h, w, 3), np.uint8)
    img[cy - r : cy + r + 1, cx - r : cx + r + 1] = 255
    return img


def cell_on_image(geometry, grid) -> tuple[float, float]:
    """``(cell_y, cell_x)``: one cell of a ``grid`` over the padded canvas, in original pixels."""
    return (geometry.padded[0] / grid[0] * geometry.original[0] / geometry.resized[0],
            geometry.padded[1] / grid[1] * geometry.original[1] / geometry.resized[1])


def peak(values: np.ndarray) -> tuple[int, int]:
    """``(y, x)`` of the largest value of a map (the first, on ties)."""
    py, px = np.unravel_index(np.argmax(values), values.shape)
    return int(py), int(px)


class _PoolBackbone(nn.Module):
    def __init__(self, strides=(4, 8, 16), channels: int = 3) -> None:
        super().__init__()
        self.strides = strides
        self.mix = nn.Conv2d(3, channels, 1, bias=False)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3)[:channels, :, None, None] + 0.1)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        y = self.mix(x)
        return OrderedDict((str(i), F.avg_pool2d(y, s)) for i, s in enumerate(self.strides))


class BrightSpotProbe(nn.Module):
    """A "detector" whose features are pooled brightness; it detects nothing."""

    def __init__(self, min_size: int = 160, max_size: int = 400, strides=(4, 8, 16)) -> None:
        super().__init__()
        self.transform = GeneralizedRCNNTransform(min_size, max_size, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
        self.backbone = _PoolBackbone(strides)

    def forward(self, images):
        il, _ = self.transform(images)
        feats = self.backbone(il.tensors)
        energy = sum(f.sum() for f in feats.values())
        out = []
        for _ in images:
            out.append({
                "boxes": torch.zeros(0, 4),
                "labels": torch.zeros(0, dtype=torch.int64),
                "scores": torch.zeros(0) * energy,
            })
        return out


class RaisingDetector(nn.Module):
    """Raises inside its backbone during forward (hooks must still be removed)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)

    def forward(self, images):
        self.backbone(torch.stack(images))
        raise RuntimeError("boom inside the model")


class _ConstantBackbone(nn.Module):
    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        flat = torch.ones(x.shape[0], 4, x.shape[-2] // 8, x.shape[-1] // 8) + 0 * x.mean()
        return OrderedDict([("0", flat)])


class ConstantProbe(BrightSpotProbe):
    """Its target layer outputs the same value everywhere: no CAM can say anything."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _ConstantBackbone()
