"""The embedded detectors as a model source: ``--camaudit-model=shapes`` (…) or a zoo checkpoint file.

The zoo registers like any family would (``HANDLES``, read by
:mod:`pytest_camaudit.detectors.registry`): it declares its names and the ``.pt`` files it reads,
and loads them; it explains nothing itself. ``shapes`` and ``shapes-shortcut`` are R-CNNs (a
torchvision ``FasterRCNN`` on a tiny FPN), explained by the ``rcnn`` family; ``shapes-yolo`` and
``shapes-yolo-shortcut`` are ultralytics YOLO11n models, explained by the ultralytics family (they
need ``pip install 'pytest-camaudit[yolo]'``). A checkpoint file's architecture is read from its
pickle, never from its name.

Import-light (the registry imports it at option parsing: its ``names`` are the catalog's, not a
literal): torch and the families load inside :func:`load`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..detectors.handles import Handles
from ..errors import ModelLoadError
from .catalog import MODELS, ZOO_MODELS, checkpoint_architecture

if TYPE_CHECKING:
    from ..detectors.base import Detector

HANDLES = Handles(
    name="zoo",
    names=ZOO_MODELS,
    suffixes=(".pt",),
    family="",
    loader="load",
    accepts="accepts",
    order=10,
    describe="an embedded detector ({names})",
)


def _no_weights(spec: str, weights: str | None) -> None:
    if weights is not None:
        raise ModelLoadError(
            f"--camaudit-weights does not apply to --camaudit-model={spec} (an embedded detector or a zoo "
            "checkpoint file, which carries its own weights); drop --camaudit-weights, or pass the checkpoint "
            "file itself as --camaudit-model"
        )


def architecture(spec: str) -> str | None:
    """``"fasterrcnn"`` or ``"yolo"`` for a zoo name or a zoo checkpoint file, else ``None``."""
    return MODELS[spec].architecture if spec in MODELS else checkpoint_architecture(spec)


def accepts(spec: str) -> bool:
    """Whether ``spec`` is a zoo checkpoint file (its pickle carries a zoo format string)."""
    return architecture(spec) is not None


def load(spec: str, weights: str | None, offline: bool) -> Detector:
    """An embedded detector by name, or a zoo checkpoint file, on the CPU in eval mode.

    Raises:
        ModelLoadError: the checkpoint is missing or corrupt (the message names the file and the
            command that regenerates it), or ``weights`` were given.
    """
    _no_weights(spec, weights)
    return _load_yolo(spec) if architecture(spec) == "yolo" else _load_rcnn(spec)


def _load_rcnn(spec: str) -> Detector:
    from ..detectors.base import Detector
    from .model import ZooCheckpointError, load_zoo_detector

    try:
        model, classes, meta = load_zoo_detector(spec)
    except ZooCheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    return Detector.wrap(model, classes, name=str(meta.get("name", spec)), meta=meta)


def _load_yolo(spec: str) -> Detector:
    from ..detectors.ultralytics.runtime import import_ultralytics
    from ..detectors.ultralytics.yolo import yolo_detector
    from .model import ZooCheckpointError

    import_ultralytics()  # a clear error when ultralytics is missing
    from .yolo import load_yolo_checkpoint

    try:
        model, classes, meta = load_yolo_checkpoint(spec)
    except ZooCheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    return yolo_detector(model, imgsz=int(meta["imgsz"]), name=str(meta.get("name", spec)), meta=meta, class_names=classes)
