"""Probe detectors with known behaviour, for alignment and engine tests.

``BrightSpotProbe`` follows the detector protocol: a torchvision ``GeneralizedRCNNTransform``
(resize + pad to a multiple of 32, mean 0 / std 1 so black stays 0 and padding is 0) and a
backbone that returns average-pooled brightness at strides 4, 8 and 16 as an FPN-like dict.
On a black image with one white square, every level peaks at the square, so a correctly
aligned EigenCAM peaks there too.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform


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
