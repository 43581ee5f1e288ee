"""What the ultralytics tests share: the offline import (skipping where ultralytics is missing),
the example scene, and images as the detectors take them.

Importing this module imports ultralytics the plugin's way first (``YOLO_OFFLINE``, a temporary
settings folder), so a test module that starts with ``from support import yolo`` is skipped, with
the install hint, where ultralytics is not installed.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.ultralytics.head import classification_branches
from pytest_camaudit.detectors.ultralytics.runtime import letterbox, model_stride, offline_ultralytics
from pytest_camaudit.detectors.ultralytics.yolo import yolo_detector
from support.probes import SPOTS

try:  # the plugin's offline import first, so importorskip finds it done
    offline_ultralytics()
except ImportError:
    pass
ultralytics = pytest.importorskip("ultralytics", reason="ultralytics is not installed (pip install 'pytest-camaudit[yolo]')")

SCENE = Path(__file__).resolve().parents[2] / "example_suite" / "data" / "images" / "scene-20000039.png"
"""A shapes scene with a triangle at ``[116.9, 18.9, 140.5, 44.2]``."""


LABELS = ("cat", "dog", "car", "tree", "person")
IMGSZ = 320


@functools.cache
def random_yolo(arch: str, end2end: bool = False) -> torch.nn.Module:
    """``arch``.yaml with 5 classes: batch norms set from a batch of noise (momentum 1 for one
    train-mode forward), class biases 0 and class weights × 0.02 (scores around 0.5)."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel(f"{arch}.yaml", nc=len(LABELS), verbose=False)
    model.names = dict(enumerate(LABELS))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(0)))
    for m in norms:
        m.momentum = 0.03
    head = model.model[-1]
    for branches in (head.cv3, getattr(head, "one2one_cv3", None) or []):
        for branch in branches:
            branch[-1].bias.data.zero_()
            branch[-1].weight.data.mul_(0.02)
    model.end2end = end2end
    return model.eval()


@functools.cache
def detector(arch: str, end2end: bool = False) -> Detector:
    """:func:`random_yolo` letterboxed to :data:`IMGSZ`, at most 20 detections."""
    return yolo_detector(random_yolo(arch, end2end), imgsz=IMGSZ, max_det=20, name=f"{arch}{'-e2e' if end2end else ''}")



def full_graph_gradients(d: Detector, image: np.ndarray, cell: tuple, cls: int) -> list[torch.Tensor]:
    """``d logit / d level`` of the class logit at ``cell`` through one autograd forward of the whole model."""
    net = d.family.network(d.model)
    head = net.model[-1]
    x = torch.from_numpy(letterbox(image, d.family.image_size(d.model), model_stride(net))).permute(2, 0, 1)[None].contiguous().float() / 255
    leaves: list[torch.Tensor] = []
    logits: dict[int, torch.Tensor] = {}

    def as_leaves(_m, args):
        leaves.extend(t.detach().requires_grad_(True) for t in args[0])
        return (list(leaves),)

    handles = [head.register_forward_pre_hook(as_leaves)]
    handles += [b.register_forward_hook(lambda _m, _i, out, k=k: logits.setdefault(k, out)) for k, b in enumerate(classification_branches(head))]
    try:
        with torch.enable_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    _, i, y, xx = cell
    grads = torch.autograd.grad(logits[i][0, cls, y, xx], leaves, allow_unused=True)
    return [g[0] if g is not None else torch.zeros_like(t[0]) for g, t in zip(grads, leaves, strict=True)]


def logit64(d: Detector, cell: tuple, cls: int, levels: dict[str, torch.Tensor]) -> float:
    """The class logit at anchor ``cell`` of the classification branch run in float64 on its level of ``levels``
    (``name → [C, h, w]``): for finite differences."""
    name, i, y, x = cell
    branch = copy.deepcopy(classification_branches(d.family.network(d.model).model[-1])[i]).double()
    with torch.no_grad():
        return float(branch(levels[name].double()[None])[0, cls, y, x])


PROBE = {"nc": 1, "backbone": [[-1, 1, "nn.AvgPool2d", [8, 8]], [-1, 1, "nn.AvgPool2d", [2, 2]], [-1, 1, "nn.AvgPool2d", [2, 2]]],
         "head": [[[0, 1, 2], 1, "Detect", ["nc"]]]}
"""A YOLO whose levels are pooled brightness at strides 8, 16, 32 (and whose fresh head detects nothing)."""


PROBE_SPOTS = [*SPOTS, (720, 1280, (13, 1270))]
"""The alignment probe's spots (:data:`support.probes.SPOTS`) and a wide image, letterboxed to 320."""


def probe_detector(imgsz: int = 320) -> Detector:
    """A fresh :data:`PROBE` ``DetectionModel`` (eval mode), letterboxed to ``imgsz``."""
    from ultralytics.nn.tasks import DetectionModel

    return yolo_detector(DetectionModel(PROBE, verbose=False).eval(), imgsz=imgsz)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``uint8 [h, w, 3]`` uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``FloatTensor[3, H, W]`` in ``[0, 1]``."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
