"""The embedded detectors as a model source: ``--camaudit-model=shapes`` (…) or a zoo checkpoint file.

``shapes`` and ``shapes-shortcut`` are R-CNNs (a torchvision ``FasterRCNN`` on a tiny FPN), so the
:mod:`.rcnn` family explains them; ``shapes-yolo`` and ``shapes-yolo-shortcut`` are ultralytics
YOLO11n models, explained by :mod:`.ultralytics` (they need ``pip install 'pytest-camaudit[yolo]'``).
This file only loads them (:mod:`pytest_camaudit.zoo.model`, :mod:`pytest_camaudit.zoo.yolo`);
a checkpoint file's architecture is read from its pickle, never from its name.
"""

from __future__ import annotations

from ..errors import ModelLoadError
from ..zoo.catalog import MODELS, checkpoint_architecture
from .base import Detector
from .sources import Loader
from .ultralytics import import_ultralytics, yolo_detector


def _no_weights(spec: str, weights: str | None) -> None:
    if weights is not None:
        raise ModelLoadError(
            f"--camaudit-weights does not apply to --camaudit-model={spec} (an embedded detector or a zoo "
            "checkpoint file, which carries its own weights); drop --camaudit-weights, or pass the checkpoint "
            "file itself as --camaudit-model"
        )


def _load(spec: str, weights: str | None, offline: bool) -> Detector:
    from ..zoo.model import ZooCheckpointError, load_zoo_detector

    _no_weights(spec, weights)
    try:
        model, classes, meta = load_zoo_detector(spec)
    except ZooCheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    return Detector.wrap(model, classes, name=str(meta.get("name", spec)), meta=meta)


def _load_yolo(spec: str, weights: str | None, offline: bool) -> Detector:
    from ..zoo.model import ZooCheckpointError

    _no_weights(spec, weights)
    import_ultralytics()  # a clear error when ultralytics is missing
    from ..zoo.yolo import load_yolo_checkpoint

    try:
        model, classes, meta = load_yolo_checkpoint(spec)
    except ZooCheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    detector = yolo_detector(model, imgsz=int(meta["imgsz"]), name=str(meta.get("name", spec)), meta=meta)
    detector.class_names = classes
    return detector


def _architecture(spec: str) -> str | None:
    return MODELS[spec].architecture if spec in MODELS else None


LOADERS = (
    Loader("zoo", lambda spec: _architecture(spec) == "fasterrcnn", _load, "embedded detector"),
    Loader("zoo", lambda spec: _architecture(spec) == "yolo", _load_yolo, "embedded YOLO detector"),
    Loader("checkpoint", lambda spec: checkpoint_architecture(spec) == "fasterrcnn", _load, "zoo checkpoint"),
    Loader("checkpoint", lambda spec: checkpoint_architecture(spec) == "yolo", _load_yolo, "zoo YOLO checkpoint"),
)
