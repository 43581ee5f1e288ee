"""Small torchvision detectors for CPU tests: every builder with a cheap input size and thresholds at 0.

Each builder gets a small ``min_size`` / few proposals so a forward costs well under a second; score
thresholds are 0 so random weights still return boxes.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torchvision.models.detection as tvd

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.specs import TORCHVISION_BUILDERS
from pytest_camaudit.detectors.torchvision.common import torchvision_class_names

TWO_STAGE = tuple(b for b in TORCHVISION_BUILDERS if "rcnn" in b)


def small_kwargs(builder: str) -> dict:
    """Builder kwargs for a cheap CPU forward that still returns two boxes with random weights."""
    if builder in TWO_STAGE:
        return {"min_size": 64, "max_size": 96, "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 20,
                "box_score_thresh": 0.0, "box_detections_per_img": 2}
    if builder.startswith(("retinanet", "fcos")):
        return {"min_size": 64, "max_size": 96, "score_thresh": 0.0, "detections_per_img": 2, "topk_candidates": 50}
    return {"score_thresh": 0.0, "detections_per_img": 2, "topk_candidates": 50}  # SSD: fixed 300 / 320 input


def build_small(builder: str) -> Detector:
    """``builder`` with random weights (torch seed 0) and :func:`small_kwargs`, wrapped on the CPU."""
    torch.manual_seed(0)
    model = getattr(tvd, builder)(weights=None, weights_backbone=None, **small_kwargs(builder))
    return Detector.wrap(model, torchvision_class_names(builder, model), name=builder, device="cpu")


@functools.cache
def small(builder: str) -> Detector:
    """:func:`build_small`, once per process."""
    return build_small(builder)


def constant_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Every convolution averages its window, every batch norm is the identity: each feature cell is
    the (monotone) brightness of its receptive field, so a bright spot peaks where it is."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif hasattr(m, "running_mean") and hasattr(m, "weight") and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return model


@functools.cache
def spot_twin(builder: str) -> Detector:
    """A constant-weight ``builder`` (pooled brightness; no normalisation, so black stays 0) resized to 320–512
    px like a real input, that keeps no detection (its map's sign then follows the mean activation)."""
    torch.manual_seed(0)
    kwargs = {**small_kwargs(builder), "min_size": 320, "max_size": 512, "image_mean": [0.0] * 3, "image_std": [1.0] * 3}
    kwargs.update({k: 1.1 for k in ("box_score_thresh", "score_thresh") if k in kwargs})
    model = constant_weights(getattr(tvd, builder)(weights=None, weights_backbone=None, **kwargs))
    return Detector.wrap(model, name=f"{builder}-spot", device="cpu")


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``uint8 [h, w, 3]`` uniform noise."""
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
