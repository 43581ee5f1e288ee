"""What the ultralytics tests share: the offline import (skipping where ultralytics is missing),
the example scene, and images as the detectors take them.

Importing this module imports ultralytics the plugin's way first (``YOLO_OFFLINE``, a temporary
settings folder), so a test module that starts with ``from support import yolo`` is skipped, with
the install hint, where ultralytics is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.ultralytics.runtime import offline_ultralytics
from pytest_camaudit.detectors.ultralytics.yolo import yolo_detector
from support.probes import SPOTS

try:  # the plugin's offline import first, so importorskip finds it done
    offline_ultralytics()
except ImportError:
    pass
ultralytics = pytest.importorskip("ultralytics", reason="ultralytics is not installed (pip install 'pytest-camaudit[yolo]')")

SCENE = Path(__file__).resolve().parents[2] / "example_suite" / "data" / "images" / "scene-20000039.png"
"""A shapes scene with a triangle at ``[116.9, 18.9, 140.5, 44.2]``."""


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
