"""Moved to :mod:`pytest_camaudit.detectors.ultralytics.runtime` (the ultralytics runtime sits with its family);
this path stays for old imports (light: names load on first use). ``yolo_detections`` here keeps
its old return type, the zoo's :class:`~pytest_camaudit.zoo.evaluate.Detections`
(:func:`pytest_camaudit.zoo.yolo.yolo_detections`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..detectors.moved import forward

if TYPE_CHECKING:
    from ..detectors.ultralytics.runtime import ImageSize, input_shape, letterbox, letterbox_geometry, model_stride, offline_ultralytics
    from .yolo import yolo_detections

__all__ = ["ImageSize", "input_shape", "letterbox", "letterbox_geometry", "model_stride", "offline_ultralytics", "yolo_detections"]

__getattr__ = forward(__name__, {"yolo_detections": "pytest_camaudit.zoo.yolo", "*": "pytest_camaudit.detectors.ultralytics.runtime"})
