"""The embedded detectors as a model source: ``--camaudit-model=shapes`` or a zoo checkpoint file.

The models themselves (a torchvision ``FasterRCNN`` on a tiny FPN) are R-CNNs, so the
:mod:`.rcnn` family explains them; this file only loads them (:mod:`pytest_camaudit.zoo.model`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..zoo.catalog import MODELS
from .base import Detector
from .sources import Loader

ZOO_FORMAT_PREFIX = b"pytest-camaudit-zoo/1"


def _is_zoo_checkpoint(spec: str) -> bool:
    """A ``.pt`` / ``.pth`` file that holds a zoo checkpoint (its pickle names the format string)."""
    import zipfile

    try:
        with zipfile.ZipFile(Path(spec).expanduser()) as z:
            data = next((z.read(n) for n in z.namelist() if n.endswith("data.pkl")), b"")
    except (OSError, zipfile.BadZipFile):
        return False
    return ZOO_FORMAT_PREFIX in data


def _load(spec: str, weights: str | None, offline: bool) -> Detector:
    from ..zoo.model import ZooCheckpointError, load_zoo_detector

    if weights is not None:
        raise ModelLoadError(
            f"--camaudit-weights does not apply to --camaudit-model={spec} (an embedded detector or a zoo "
            "checkpoint file, which carries its own weights); drop --camaudit-weights, or pass the checkpoint "
            "file itself as --camaudit-model"
        )
    try:
        model, classes, meta = load_zoo_detector(spec)
    except ZooCheckpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    return Detector.wrap(model, classes, name=str(meta.get("name", spec)), meta=meta)


LOADERS = (
    Loader("zoo", lambda spec: spec in MODELS and MODELS[spec].architecture == "fasterrcnn", _load, "embedded detector"),
    Loader("checkpoint", _is_zoo_checkpoint, _load, "zoo checkpoint"),
)
