"""torchvision's detection builders as a model source, and what every torchvision family shares.

``--camaudit-model=fasterrcnn_resnet50_fpn`` builds the model: random weights, a state-dict file
(``--camaudit-weights=PATH``), or a weights enum name (``DEFAULT``, ``COCO_V1``…), which torchvision
downloads once into the torch hub cache (``$TORCH_HOME/hub/checkpoints``, with a progress bar and
its hash check) — or, with ``--camaudit-offline``, must already be there. Class names come from the
weights' metadata (COCO's 91; ``keypointrcnn_resnet50_fpn``: ``no person``, ``person``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import torch
from torch import nn

from ...errors import ModelLoadError
from ..base import Detector
from ..family import Family
from ..statedict import load_state_dict_file


def coco_class_names() -> list[str]:
    """torchvision's 91 COCO category names (index 0 ``__background__``), from code, offline."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    return list(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def num_classes(model: nn.Module) -> int | None:
    """Number of classes (background included) a torchvision-shaped detector predicts."""
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    if predictor is not None and hasattr(predictor, "cls_score"):
        return int(predictor.cls_score.out_features)
    head = getattr(getattr(model, "head", None), "classification_head", None)
    for attr in ("num_classes", "num_columns"):
        if head is not None and hasattr(head, attr):
            return int(getattr(head, attr))
    return None


class TorchvisionFamily(Family):
    """The torchvision protocol plus torchvision's way of counting and naming classes."""

    def num_classes(self, model: nn.Module) -> int | None:
        return num_classes(model)

    def class_names(self, model: nn.Module) -> list[str] | None:
        own = super().class_names(model)
        if own is not None:
            return own
        return coco_class_names() if num_classes(model) == 91 else None


def torchvision_class_names(builder: str, model: nn.Module) -> list[str] | None:
    """Class names of ``builder`` from its weights' metadata (offline), when the counts agree.

    ``None`` when the model predicts another number of classes (a fine-tuned head).
    """
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(builder)
    except (ValueError, KeyError):
        return None
    categories = list(next(iter(weights)).meta.get("categories", []))
    n = num_classes(model)
    if categories and (n is None or n == len(categories)):
        return categories
    return None


def torchvision_weights_path(builder: str, enum_name: str) -> tuple[Any, Path]:
    """The torchvision weights enum ``builder``/``enum_name`` and where torch hub caches its file."""
    from torchvision.models import get_model_weights

    enum_cls = get_model_weights(builder)
    try:
        weights = enum_cls.DEFAULT if enum_name.upper() == "DEFAULT" else enum_cls[enum_name.split(".")[-1]]
    except KeyError:
        raise ModelLoadError(
            f"unknown weights {enum_name!r} for {builder}; expected a file path or one of "
            f"{', '.join(['DEFAULT'] + [w.name for w in enum_cls])}"
        ) from None
    return weights, Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _from_file(fn: Any, builder: str, path: Path) -> tuple[nn.Module, list[str] | None]:
    state, classes = load_state_dict_file(path)
    kwargs: dict[str, Any] = {}
    if "roi_heads.box_predictor.cls_score.weight" in state:
        kwargs["num_classes"] = int(state["roi_heads.box_predictor.cls_score.weight"].shape[0])
    model = fn(weights=None, weights_backbone=None, **kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelLoadError(f"weights file {path} does not fit {builder}: {str(exc).splitlines()[0]} …") from exc
    return model, classes


def _from_enum(fn: Any, builder: str, name: str, offline: bool) -> tuple[nn.Module, list[str], dict[str, Any]]:
    enum, cached = torchvision_weights_path(builder, name)
    if not cached.is_file() and offline:
        raise ModelLoadError(
            f"weights {enum} are not in the local torch cache: expected {cached}. This run may not download them "
            f"(--camaudit-offline); copy the file from {enum.url} to that path, or pass a local file with --camaudit-weights=PATH"
        )
    try:
        model = fn(weights=enum, weights_backbone=None, progress=not cached.is_file())
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; a hash mismatch a RuntimeError
        if isinstance(exc, HTTPError):
            exc.close()  # torch hub's urlopen raised with the error response (and its socket) still open
        raise ModelLoadError(
            f"could not download weights {enum} from {enum.url} into {cached} ({type(exc).__name__}: {exc}); "
            "check the network, or copy the file there yourself, or pass a local file with --camaudit-weights=PATH"
        ) from exc
    return model, list(enum.meta["categories"]), {"weights": f"{enum} ({cached})"}


def build_torchvision(builder: str, weights: str | None, offline: bool = False) -> tuple[nn.Module, list[str] | None, dict[str, Any]]:
    """Build a torchvision detector: random weights, a state-dict file, or a weights enum (downloaded unless ``offline``).

    Returns:
        ``(model, class names or None, meta)``.
    """
    import torchvision.models.detection as tvd

    fn = getattr(tvd, builder)
    meta: dict[str, Any] = {"builder": builder}
    if weights is None:
        model = fn(weights=None, weights_backbone=None)
        meta["weights"] = "random (weights=None)"
        return model, torchvision_class_names(builder, model), meta
    path = Path(weights)
    if path.suffix in (".pt", ".pth", ".bin") or path.exists():
        model, classes = _from_file(fn, builder, path)
        meta["weights"] = str(path)
        return model, classes or torchvision_class_names(builder, model), meta
    model, classes, more = _from_enum(fn, builder, weights, offline)
    return model, classes, {**meta, **more}


def load(spec: str, weights: str | None, offline: bool) -> Detector:
    """``--camaudit-model=<builder>``: the loader the torchvision families declare for their builders' names."""
    model, classes, meta = build_torchvision(spec, weights, offline)
    return Detector.wrap(model, classes, name=spec, meta=meta)
