"""What the ultralytics RT-DETR tests share: the probe yamls, random models, the full forward's gradient
and a float64 finite difference of the head.

Importing this module imports ultralytics the plugin's way first (through :mod:`support.yolo`), so a test
module that starts with ``from support import rtdetr`` is skipped where ultralytics is not installed.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.ultralytics.rtdetr import rtdetr_detector, stretch
from support.yolo import LABELS

IMGSZ = 320

PROBE: dict[str, Any] = {
    "nc": len(LABELS),
    "backbone": [
        [-1, 1, "Conv", [16, 3, 2]],  # 0 P1/2
        [-1, 1, "Conv", [32, 3, 2]],  # 1 P2/4
        [-1, 1, "Conv", [32, 3, 2]],  # 2 P3/8
        [-1, 1, "Conv", [64, 3, 2]],  # 3 P4/16
        [-1, 1, "Conv", [64, 3, 2]],  # 4 P5/32
    ],
    "head": [
        [-1, 1, "Conv", [32, 1, 1, None, 1, 1, False]],  # 5
        [-1, 1, "AIFI", [64, 4]],  # 6
        [-1, 1, "Conv", [32, 1, 1]],  # 7 Y5
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],  # 8
        [3, 1, "Conv", [32, 1, 1, None, 1, 1, False]],  # 9
        [[-2, -1], 1, "Concat", [1]],  # 10
        [-1, 1, "RepC3", [32]],  # 11
        [-1, 1, "Conv", [32, 1, 1]],  # 12 Y4
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],  # 13
        [2, 1, "Conv", [32, 1, 1, None, 1, 1, False]],  # 14
        [[-2, -1], 1, "Concat", [1]],  # 15
        [-1, 1, "RepC3", [32]],  # 16 X3 (P3)
        [-1, 1, "Conv", [32, 3, 2]],  # 17
        [[-1, 12], 1, "Concat", [1]],  # 18
        [-1, 1, "RepC3", [32]],  # 19 F4 (P4)
        [-1, 1, "Conv", [32, 3, 2]],  # 20
        [[-1, 7], 1, "Concat", [1]],  # 21
        [-1, 1, "RepC3", [32]],  # 22 F5 (P5)
        [[16, 19, 22], 1, "RTDETRDecoder", ["nc", 32, 30, 4, 4, 3, 64]],  # 23
    ],
}
"""A 226 k-parameter RT-DETR with the real architecture's parts (rtdetr-l: 33 M): strided ``Conv`` s to P5,
``AIFI`` on P5, the CCFM neck (``RepC3``), ``RTDETRDecoder(nc, hd=32, nq=30, ndp=4, nh=4, ndl=3, d_ffn=64)``."""

SPOT: dict[str, Any] = {
    "nc": 1,
    "backbone": [[-1, 1, "nn.AvgPool2d", [8, 8]], [-1, 1, "nn.AvgPool2d", [2, 2]], [-1, 1, "nn.AvgPool2d", [2, 2]]],
    "head": [[[0, 1, 2], 1, "RTDETRDecoder", ["nc", 16, 10, 2, 2, 1, 32]]],
}
"""An RT-DETR whose levels are pooled brightness at strides 8, 16, 32."""


def set_norms_from_noise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Batch norms set from one train-mode forward of noise (momentum 1), then eval mode: a fresh
    ultralytics model in eval mode has vanishing activations."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(seed)))
    for m in norms:
        m.momentum = 0.03
    return model.eval()


def random_rtdetr(cfg: dict[str, Any] | str | None = None, seed: int = 0) -> torch.nn.Module:
    """``RTDETRDetectionModel(cfg)`` (default :data:`PROBE`, classes :data:`~support.yolo.LABELS`), seeded, norms from noise."""
    from ultralytics.nn.tasks import RTDETRDetectionModel

    torch.manual_seed(seed)
    model = RTDETRDetectionModel(copy.deepcopy(cfg if cfg is not None else PROBE), verbose=False)
    if int(model.model[-1].nc) == len(LABELS):
        model.names = dict(enumerate(LABELS))
    return set_norms_from_noise(model, seed)


@functools.cache
def detector() -> Detector:
    """:func:`random_rtdetr` stretched to :data:`IMGSZ`."""
    return rtdetr_detector(random_rtdetr(), imgsz=IMGSZ, name="rtdetr-probe")


@functools.cache
def spot_detector() -> Detector:
    """:data:`SPOT` whose class biases are -30: it detects nothing, so EigenCAM's sign is the activations' own."""
    model = random_rtdetr(SPOT)
    for layer in model.model[-1].dec_score_head:
        layer.bias.data.fill_(-30.0)
    return rtdetr_detector(model, imgsz=IMGSZ, name="rtdetr-spot")


def full_graph_gradients(d: Detector, image: np.ndarray, query: int, cls: int) -> list[torch.Tensor]:
    """``d logit / d level`` of ``logits[0, query, cls]`` through one autograd forward of the whole model (the
    head's inputs swapped for channels_last leaves: plain ones meet torch's BatchNorm backward bug)."""
    net, head = d.model, d.target_layer
    x = torch.from_numpy(stretch(image, d.family.canvas(net))).permute(2, 0, 1)[None].contiguous().float() / 255  # type: ignore[attr-defined]
    leaves: list[torch.Tensor] = []

    def as_leaves(_m: Any, args: Any) -> Any:
        leaves.extend(t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True) for t in args[0])
        return (list(leaves), *args[1:])

    handle = head.register_forward_pre_hook(as_leaves)
    try:
        with torch.enable_grad():
            _, raw = net(x)
    finally:
        handle.remove()
    grads = torch.autograd.grad(raw[1][-1][0, query, cls], leaves, allow_unused=True)
    return [g[0] if g is not None else torch.zeros_like(t[0]) for g, t in zip(grads, leaves, strict=True)]


def logit64(d: Detector, levels: OrderedDict[str, torch.Tensor], query: int, cls: int) -> float:
    """``logits[0, query, cls]`` of the head run in float64 on ``levels`` (``name → [C, h, w]``): for finite differences."""
    head = copy.deepcopy(d.target_layer).double()
    head.shapes = None  # type: ignore[assignment]
    with torch.no_grad():
        return float(head([v.double()[None] for v in levels.values()])[1][1][-1][0, query, cls])
