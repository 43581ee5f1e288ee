"""ultralytics YOLO (YOLOv8, YOLO11, YOLO26): run it as its predictor does, capture its levels, explain one box.

ultralytics is an optional extra (``pip install 'pytest-camaudit[yolo]'``; AGPL-3.0), imported only
when a YOLO is used, always through :func:`.runtime.offline_ultralytics`
(``YOLO_OFFLINE=1``, no settings file of the user's, process-wide settings put back). Nothing here
calls ``predict()`` or ``select_device``: the first resets torch's thread count for the whole
process, and its inference mode leaves anchors behind that an autograd forward cannot use.

**Models.** An ultralytics ``DetectionModel`` whose last layer is a plain ``Detect`` head, or the
``YOLO`` object around one (its ``.model`` is what runs). Segmentation, pose, OBB, world and
RT-DETR models are other heads: not this family.

**Running** (:meth:`UltralyticsFamily.run`). ``FloatTensor[3, H, W]`` images in ``[0, 1]`` go back
to ``uint8`` (exact for every image the engine loads) and through
:func:`.runtime.yolo_detections`: the predictor's letterbox at the
model's own ``imgsz`` (its training arguments, ``model.args["imgsz"]``, or the ``YOLO`` object's
overrides; else 640), the module itself, ``non_max_suppression`` and ``scale_boxes``. Scores are
kept down to ``conf = 0.05`` (torchvision's ``box_score_thresh``; the assertions apply
``--camaudit-score-threshold``): every box above ``predict()``'s default 0.25 is the predictor's.
The plugin's label is the model's class **+ 1** (index 0 is ``__background__`` throughout the
plugin): ``class_names = ["__background__", *model.names]``.

**Capture.** The target layer is the ``Detect`` head; a forward *pre*-hook keeps its input, the
levels it consumes (``P3``, ``P4``, ``P5``: ``FloatTensor[B, C, h, w]`` at strides 8, 16, 32). Output
hooks on the head's classification branches keep the class logits, and a pre-hook on the model the
letterboxed canvas (:meth:`UltralyticsFamily.geometry` checks the letterbox arithmetic against it).
Right after the forward each detection is traced to its anchor point (:func:`.head.trace_cells`;
ties of saturated scores are told apart by the head's decoded boxes, kept by an output hook).

**Explaining one box.** Gradients are those of the detection's class *logit* (its sigmoid
saturates: a score of 0.99 passes on 1 % of the logit's gradient, a float32 1.0 none), computed by
the classification branch alone on a detached ``5 × 5`` window of the level around the anchor
point — equal to the full forward's graph, with no autograd forward. AblationCAM re-scores the same
window (sigmoid score).

**Loading** (``--camaudit-model``). An ultralytics ``.pt`` (``yolo11n.pt``, a ``best.pt``): told
apart from other ``.pt`` files by its pickle naming ultralytics' classes, and loaded by
ultralytics' own ``load_checkpoint``, which unpickles it with ``weights_only=False`` — it can run
code: load only checkpoints you trust. An architecture file or name (``yolo11n.yaml``,
``yolov8s.yaml``, ``yolo26n.yaml``, or your own): built with ultralytics' random initialisation,
whose maps are noise (useful to try the plugin; add ``--camaudit-weights`` for a state dict).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...datatypes import Detection, Geometry
from ...errors import DetectorRuntimeError, ModelLoadError
from ...fileio import pickle_of
from ..base import Detector
from ..family import Capture, DetectorView, Family, HookPoint, LocalScorer, RawOutput
from ..handles import Handles
from ..statedict import load_state_dict_file
from .head import Cell, anchor_boxes, classification_branches, level_names, support_of, trace_cells, window_logit, window_of
from .runtime import INSTALL_HINT, import_ultralytics, is_ultralytics, letterbox_geometry, model_stride, trained_imgsz, yolo_detections

HANDLES = Handles(
    name="ultralytics-yolo",
    classes=("DetectionModel", "Model"),
    class_modules=("ultralytics.",),
    suffixes=(".pt", ".yaml", ".yml"),
    loader="load",
    accepts="accepts",
    describe="an architecture file such as yolo11n.yaml",
)
"""ultralytics detection models and ``YOLO`` objects (a plain ``Detect`` head: :func:`detection_model`), their ``.pt``
checkpoints (told by their pickle) and architecture files."""

HEADS: tuple[str, ...] = ("Detect",)
"""Head classes (by name) this family explains."""

DEFAULT_CONF = 0.05
DEFAULT_IMGSZ = 640
_ULTRALYTICS_CLASSES = re.compile(rb"ultralytics\.(?:nn|models|yolo)\.")

__all__ = ["DEFAULT_CONF", "DEFAULT_IMGSZ", "FAMILY", "HANDLES", "HEADS", "INSTALL_HINT", "UltralyticsFamily", "accepts",
           "detection_model", "import_ultralytics", "load", "yolo_detector"]


def detection_model(model: Any) -> nn.Module | None:
    """The ``DetectionModel`` with a ``Detect`` head behind ``model`` (itself, or a ``YOLO`` object's), else ``None``."""
    if is_ultralytics(model, "Model"):
        model = model._modules.get("model")  # the YOLO object's network (not through its __getattr__)
    layers = getattr(model, "model", None) if is_ultralytics(model, "DetectionModel") else None
    if isinstance(layers, nn.Sequential) and len(layers) and type(layers[-1]).__name__ in HEADS:
        return model if isinstance(model, nn.Module) else None
    return None


def _uint8(image: torch.Tensor) -> np.ndarray:
    """``FloatTensor[3, H, W]`` in ``[0, 1]`` → ``uint8 [H, W, 3]`` (what the image file held)."""
    pixels = image.detach().to("cpu").permute(1, 2, 0).mul(255.0).round_().clamp_(0, 255)  # [H, W, 3], contiguous
    return pixels.to(torch.uint8).numpy()


@dataclass(frozen=True, eq=False)
class UltralyticsFamily(Family):
    """ultralytics ``DetectionModel`` s with a ``Detect`` head (module docstring): frozen settings.

    Attributes:
        imgsz: letterbox size; ``None`` until :meth:`for_model` reads the model's own (its training
            ``imgsz``, else 640).
        conf: ``non_max_suppression``'s score threshold (:data:`DEFAULT_CONF`).
        iou: its IoU threshold (the predictor's 0.7).
        max_det: its cap on detections per image (the predictor's 300).
    """

    name = "ultralytics-yolo"
    box_local_gradients: ClassVar[bool] = True
    handles = HANDLES
    imgsz: int | tuple[int, int] | None = None
    conf: float = DEFAULT_CONF
    iou: float = 0.7
    max_det: int = 300

    def configured(self, imgsz: int | tuple[int, int] | None = None, conf: float | None = None, iou: float | None = None,
                   max_det: int | None = None) -> UltralyticsFamily:
        """A family with these settings (``None``: keep this one's)."""
        return dataclasses.replace(self, imgsz=self.imgsz if imgsz is None else imgsz, conf=self.conf if conf is None else float(conf),
                                   iou=self.iou if iou is None else float(iou), max_det=self.max_det if max_det is None else int(max_det))

    def for_model(self, model: nn.Module) -> UltralyticsFamily:
        """This family with the model's own letterbox size when it has none."""
        return self if self.imgsz is not None else dataclasses.replace(self, imgsz=self.image_size(model))

    def network(self, model: Any) -> nn.Module:
        """``model``'s ``DetectionModel`` (see :func:`detection_model`)."""
        net = detection_model(model)
        if net is None:
            raise DetectorRuntimeError(f"{type(model).__name__} is not an ultralytics DetectionModel with a Detect head")
        return net

    def head(self, model: Any) -> Any:
        """The ``Detect`` head (the target layer)."""
        net: Any = self.network(model)
        return net.model[-1]

    def image_size(self, model: Any) -> int | tuple[int, int]:
        """The letterbox size: the family's, else the ``YOLO`` object's overrides, the model's training ``imgsz``, 640."""
        if self.imgsz is not None:
            return self.imgsz
        return trained_imgsz(model, self.network(model), DEFAULT_IMGSZ)

    # -- Family -------------------------------------------------------------------------------------
    def matches(self, model: nn.Module) -> bool:
        return detection_model(model) is not None

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        net: Any = detection_model(model)
        return net.model[-1] if net is not None else None

    def class_names(self, model: nn.Module) -> list[str] | None:
        head, names = self.head(model), getattr(self.network(model), "names", None) or {}
        if isinstance(names, (list, tuple)):
            names = dict(enumerate(names))
        return ["__background__", *(str(names.get(i, f"class_{i}")) for i in range(int(head.nc)))]

    def num_classes(self, model: nn.Module) -> int | None:
        return int(self.head(model).nc) + 1

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        net, head = self.network(detector.model), self.head(detector.model)
        names, letterbox = level_names(head), (self.image_size(detector.model), model_stride(net))
        points = {
            "features": HookPoint(head, "input", take=lambda args: OrderedDict(zip(names, list(args[0]), strict=True))),
            "letterbox": HookPoint(net, "input", take=lambda args: (tuple(int(v) for v in args[0].shape[-2:]), *letterbox)),
        }
        for i, branch in enumerate(classification_branches(head)):
            points[f"class_logits_{i}"] = HookPoint(branch, take=lambda out: out.detach())
        if not bool(getattr(head, "end2end", False)):  # every anchor's decoded box, to tell saturated scores apart
            nc = int(head.nc)
            points["anchor_boxes"] = HookPoint(head, take=lambda out: anchor_boxes(out, nc))
        return points

    def run(self, detector: DetectorView, images: list[torch.Tensor]) -> list[RawOutput]:
        """Detections of ``images`` (``FloatTensor[3, H, W]`` in ``[0, 1]``) as the predictor makes them."""
        import_ultralytics()
        net = self.network(detector.model)
        return yolo_detections(net, [_uint8(im) for im in images], self.conf, self.iou, self.image_size(detector.model),
                               self.max_det, batch_size=max(1, len(images)))

    def geometry(self, captured: dict[str, Any], original: tuple[int, int], index: int = 0) -> Geometry:
        """The letterbox of an image of ``original`` pixels, checked against the canvas the model saw."""
        if "letterbox" not in captured:
            return Geometry.identity(*original)
        canvas, imgsz, stride = captured["letterbox"]
        geometry = letterbox_geometry(original, imgsz, stride)
        if geometry.padded != canvas:
            raise DetectorRuntimeError(f"the YOLO saw a {canvas[0]}x{canvas[1]} canvas where ultralytics' letterbox arithmetic "
                                       f"gives {geometry.padded[0]}x{geometry.padded[1]} for a {original[0]}x{original[1]} image; "
                                       "was the letterbox changed (this ultralytics version is not supported)?")
        return geometry

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        logits = [captured[k] for k in sorted((k for k in captured if k.startswith("class_logits_")), key=lambda k: int(k.rsplit("_", 1)[1]))]
        if len(logits) != len(capture.levels):
            return {}
        # traced on the first per-box question (gradients, ablation): EigenCAM alone never needs it
        return {"trace": (logits, captured.get("anchor_boxes"))}

    def cell_of(self, capture: Capture, detection: Detection) -> Cell | None:
        """The anchor point ``detection`` came from (traced from its forward's logits), when there is one."""
        if "cells" not in capture.memo and "trace" in capture.memo:
            logits, anchors = capture.memo.pop("trace")
            capture.memo["cells"] = trace_cells(logits, list(capture.levels), capture.detections, capture.geometry, anchors)
        cells = capture.memo.get("cells")
        return cells[detection.index] if cells is not None and detection.index < len(cells) else None

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        """``d logit / d level`` of the detection's class *logit*, through its branch on a window of its level."""
        cell = self.cell_of(capture, detection)
        if cell is None:
            return None
        name, i, y, x = cell
        branch = classification_branches(self.head(detector.model))[i]
        level = capture.levels[name]
        y0, y1, x0, x1 = window_of(branch, level.shape, y, x)
        out = OrderedDict((k, torch.zeros_like(v)) for k, v in capture.levels.items())
        with torch.enable_grad():
            leaf = level[:, y0:y1, x0:x1][None].detach().requires_grad_(True)
            logit = window_logit(branch, leaf, (y - y0, x - x0), detection.label - 1)[0]
            (grad,) = torch.autograd.grad(logit, [leaf])
        out[name][:, y0:y1, x0:x1] = grad[0]
        return out

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        """The detection's score (sigmoid of its class logit) from the same window, for AblationCAM."""
        cell = self.cell_of(capture, detection)
        if cell is None:
            raise DetectorRuntimeError(f"{detection.describe()} was not traced to an anchor point of {detector.name}; "
                                       "was the analysis made by CamEngine.analyze?")
        name, i, y, x = cell
        branch = classification_branches(self.head(detector.model))[i]
        level = capture.levels[name]
        y0, y1, x0, x1 = window_of(branch, level.shape, y, x)
        where, cls = (y - y0, x - x0), detection.label - 1

        def score(windows: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(window_logit(branch, windows, where, cls))

        window = level[:, y0:y1, x0:x1]
        with torch.no_grad():
            base = float(score(window[None])[0])
        if abs(base - detection.score) > 1e-3 * max(1.0, detection.score):
            raise DetectorRuntimeError(f"re-scoring {detection.describe()} on a {y1 - y0}x{x1 - x0} window of level {name} gave "
                                       f"{base:.6f}; the head reads more than its convolutions' receptive field")
        return LocalScorer(name, window, score, support_of(branch, level.shape, y, x).to(level.device), base)

    def fill_colour(self, detector: DetectorView) -> np.ndarray:
        """Grey 114: the letterbox's padding, what "nothing here" looks like to a YOLO."""
        return np.array([114, 114, 114], dtype=np.uint8)


FAMILY = UltralyticsFamily()


def yolo_detector(model: nn.Module, imgsz: int | tuple[int, int] | None = None, conf: float = DEFAULT_CONF, iou: float = 0.7,
                  max_det: int = 300, name: str | None = None, meta: dict[str, Any] | None = None,
                  class_names: Sequence[str] | None = None) -> Detector:
    """Wrap an ultralytics ``DetectionModel`` or ``YOLO`` object with its own letterbox size and thresholds.

    A conftest or ``package.module:callable`` may return the model itself (the family's defaults
    apply) or this, e.g. ``yolo_detector(YOLO("best.pt"), conf=0.25)``. ``class_names`` default to
    the model's (``["__background__", *model.names]``).

    Raises:
        ModelLoadError: ``model`` is not an ultralytics detection model with a ``Detect`` head.
    """
    net = detection_model(model)
    if net is None:
        kind = type(getattr(model, "_modules", {}).get("model", model)).__name__
        raise ModelLoadError(f"{kind} is not an ultralytics detection model with a plain Detect head (YOLOv8, YOLO11, YOLO26); "
                             "segmentation, pose, OBB, world and RT-DETR models are not explained by this family")
    family = FAMILY.configured(imgsz if imgsz is not None else FAMILY.image_size(model), conf, iou, max_det)
    return Detector.wrap(net, class_names, name=name or type(model).__name__, meta={"imgsz": family.imgsz, **dict(meta or {})},
                         family=family)


# -- loading -----------------------------------------------------------------------------------------


def _no_weights(spec: str, weights: str | None) -> None:
    if weights is not None:
        raise ModelLoadError(f"--camaudit-weights does not apply to --camaudit-model={spec} (an ultralytics checkpoint carries "
                             "its own weights); drop --camaudit-weights")


def _load_checkpoint(spec: str, weights: str | None, offline: bool) -> Detector:
    """An ultralytics ``.pt`` through ultralytics' own loader (``weights_only=False``: trusted files only)."""
    path = Path(spec).expanduser()
    _no_weights(spec, weights)
    import_ultralytics()
    from ultralytics.nn import tasks

    load = getattr(tasks, "load_checkpoint", None) or getattr(tasks, "attempt_load_one_weight")  # noqa: B009  (8.3's name)
    try:
        model, _ = load(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ModelLoadError(f"cannot load the ultralytics checkpoint {path} ({type(exc).__name__}: {first}); "
                             "check that the file is complete and was saved by ultralytics") from exc
    if detection_model(model) is None:
        raise ModelLoadError(f"{path} holds an ultralytics {type(model).__name__} (task {getattr(model, 'task', '?')!r}); "
                             "the plugin explains detection models with a Detect head (YOLOv8, YOLO11, YOLO26)")
    return yolo_detector(model, name=path.name, meta={"checkpoint": str(path)})


def _is_checkpoint(spec: str) -> bool:
    """A ``torch.save`` file whose pickle names ultralytics' classes (read without unpickling)."""
    return bool(_ULTRALYTICS_CLASSES.search(pickle_of(spec)))


def _is_config(spec: str) -> bool:
    """A ``.yaml`` named ``yolo…`` (one ultralytics ships) or a file with ``backbone:`` and ``head:`` sections."""
    if Path(spec).name.lower().startswith("yolo"):
        return True
    try:
        text = Path(spec).expanduser().read_text(encoding="utf-8", errors="replace")[:100_000]
    except OSError:
        return False
    return "backbone:" in text and "head:" in text


def _load_config(spec: str, weights: str | None, offline: bool) -> Detector:
    """``DetectionModel(cfg=spec)`` with ultralytics' random initialisation (or ``--camaudit-weights``)."""
    if "://" in spec:
        raise ModelLoadError(f"--camaudit-model={spec}: architecture files are read locally, never downloaded; pass a local file")
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    try:
        model = DetectionModel(cfg=spec, verbose=False)
    except Exception as exc:
        raise ModelLoadError(f"cannot build an ultralytics YOLO from {spec} ({type(exc).__name__}: {exc}); pass an architecture "
                             "ultralytics ships (yolov8n.yaml, yolo11n.yaml, yolo26n.yaml…) or a path to your own") from exc
    if detection_model(model) is None:
        layers: Any = model.model
        raise ModelLoadError(f"{spec} builds a {type(layers[-1]).__name__} head; the plugin explains plain Detect heads")
    meta = {"config": spec, "weights": "random (ultralytics' initialisation): its maps are noise"}
    if weights is not None:
        state, _ = load_state_dict_file(Path(weights))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights file {weights} does not fit {spec}: {str(exc).splitlines()[0]}") from exc
        meta["weights"] = weights
    return yolo_detector(model.eval(), name=spec, meta=meta)


def _is_yaml(spec: str) -> bool:
    return spec.lower().endswith((".yaml", ".yml"))


def accepts(spec: str) -> bool:
    """Whether this family loads file ``spec``: an ultralytics checkpoint, or an architecture file (see :data:`HANDLES`)."""
    return _is_config(spec) if _is_yaml(spec) else _is_checkpoint(spec)


def load(spec: str, weights: str | None, offline: bool) -> Detector:
    """``--camaudit-model`` = an ultralytics ``.pt`` or an architecture file."""
    return _load_config(spec, weights, offline) if _is_yaml(spec) else _load_checkpoint(spec, weights, offline)
