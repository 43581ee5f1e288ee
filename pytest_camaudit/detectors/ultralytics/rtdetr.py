"""ultralytics RT-DETR (``RTDETRDetectionModel``): run it as ``RTDETRPredictor`` does, capture its levels, explain one box.

ultralytics is the optional ``yolo`` extra (AGPL-3.0), imported only when an RT-DETR is used, through
:func:`.runtime.import_ultralytics`; ``predict()`` is never called (see :mod:`.runtime`).

**Models.** An ``RTDETRDetectionModel`` (a ``DetectionModel`` whose last layer is ``RTDETRDecoder``), or the
``RTDETR`` / ``YOLO`` object around one; ultralytics builds it in train mode, the family runs it in eval mode.

**Running** (:meth:`UltralyticsRtDetrFamily.run`). ``RTDETRPredictor`` *stretches* the image to the whole
canvas (``LetterBox(imgsz, scale_fill=True)``: bilinear, no padding, x and y scaled independently; ``imgsz``
rounded up to multiples of 32), RGB / 255. In eval mode the head post-processes itself (ultralytics >= 8.4.50):
the sigmoid of the eval decoder layer's class logits ``[B, Q, nc]``, a sorted ``topk`` over queries × classes
(``k = min(Q, Q * nc)``: one query may appear with several classes), rows ``[cx, cy, w, h, score, class]``
normalised to the canvas. The predictor keeps ``score > conf``, ``[:max_det]``, scales boxes to the image:
**no NMS, no clipping**. Scores are kept down to ``conf = 0.05``; the plugin's label is the class **+ 1**.

**Capture.** The target layer is the ``RTDETRDecoder``; a pre-hook keeps its input levels ``P3``, ``P4``,
``P5`` (``FloatTensor[B, C, h, w]``, named ``P<log2(canvas / cells)>``: what ultralytics' own heatmap
explains), an output hook the eval layer's class logits. Detection ``i`` is row ``i`` of the head's top-k:
query ``index // nc``, class ``index % nc`` (checked against its label and score after the forward).

**Explaining one box.** Gradients of the class *logit* by re-running the whole head on detached leaves of
the captured levels: one replay per image (kept on the capture), one backward per box. In eval mode
ultralytics detaches nothing inside the head (only ``if self.training``), so the gradient flows through
the query selection's features and every decoder layer, and reaches every level. The leaves are
**channels_last**: torch 2.14.1's CPU ``BatchNorm2d`` backward (eval, batch 1) is wrong for an NCHW input
whose incoming gradient is channels_last with a degenerate batch stride — what ``input_proj``'s batch norms
receive (read through ``flatten(2).permute(0, 2, 1)``). A full autograd forward shares the bug, a float64
finite difference does not (the family-contract suite checks both).

**Not available** (the errors name the alternatives): AblationCAM — a detection is a query chosen by a top-k
over every cell, reading every level through deformable attention, so no window of one level re-scores it;
attention relevance — the decoder samples the image at deformable points, it has no attention matrix over
image tokens. EigenCAM, every gradient method, D-RISE and the context check apply.

**Loading** (``--camaudit-model``). An ``rtdetr-*.pt`` (a checkpoint whose pickle names ``RTDETRDecoder`` /
``RTDETRDetectionModel``) by ultralytics' ``load_checkpoint`` (``weights_only=False``: trusted files only);
ultralytics' ``rtdetr-l.yaml``, ``rtdetr-x.yaml``… or a local yaml with an ``RTDETRDecoder`` layer (random
weights; ``--camaudit-weights`` for a state dict). Declared before the YOLO family (``order``), so the YOLO
loader never sees an RT-DETR file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
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
from .runtime import import_ultralytics, input_shape, is_ultralytics, trained_imgsz

HANDLES = Handles(
    name="ultralytics-rtdetr",
    classes=("DetectionModel", "Model"),
    class_modules=("ultralytics.",),
    suffixes=(".pt", ".yaml", ".yml"),
    loader="load",
    accepts="accepts",
    order=90,
    describe="an RT-DETR architecture file such as rtdetr-l.yaml",
)
"""ultralytics ``RTDETRDetectionModel`` s and the ``RTDETR`` / ``YOLO`` objects around them (:func:`rtdetr_network`),
their ``.pt`` checkpoints and architecture files (told apart from YOLO ones by content; before the YOLO family)."""

HEAD = "RTDETRDecoder"
DEFAULT_CONF = 0.05
DEFAULT_IMGSZ = 640
STRIDE = 32  # check_imgsz's: the canvas is imgsz rounded up to multiples of 32

_RTDETR_PICKLE = re.compile(rb"ultralytics\.nn\.(?:modules\.head|modules|tasks)[\n\x94\x8c\x00-\x20]+\S?(?:RTDETRDecoder|RTDETRDetectionModel)\b")
"""Both classes' globals in a pickle, protocol 2 (``c<module>\\n<name>``) or 4+ (``\\x8c<len><module>\\x94\\x8c<len><name>``)."""
_RTDETR_YAML = re.compile(r"^[^#\n]*\bRTDETRDecoder\b", re.MULTILINE)
"""A layer whose module is ``RTDETRDecoder`` (flow or block style), not a comment."""

UNAVAILABLE_ALTERNATIVES = "use eigengradcam, gradcam, hirescam, layercam or drise"
__all__ = ["DEFAULT_CONF", "DEFAULT_IMGSZ", "FAMILY", "HANDLES", "HEAD", "UltralyticsRtDetrFamily", "accepts", "load",
           "rtdetr_detector", "rtdetr_network", "stretch", "top_k"]


def rtdetr_network(model: Any) -> nn.Module | None:
    """The ``RTDETRDetectionModel`` behind ``model`` (itself, or an ``RTDETR`` / ``YOLO`` object's), else ``None``."""
    if is_ultralytics(model, "Model"):
        model = model._modules.get("model")  # the object's network (not through its __getattr__)
    layers = getattr(model, "model", None) if is_ultralytics(model, "DetectionModel") else None
    if isinstance(layers, nn.Sequential) and len(layers) and type(layers[-1]).__name__ == HEAD:
        return model if isinstance(model, nn.Module) else None
    return None


def _uint8(image: torch.Tensor) -> np.ndarray:
    """``FloatTensor[3, H, W]`` in ``[0, 1]`` → ``uint8 [H, W, 3]`` (what the image file held)."""
    pixels = image.detach().to("cpu").permute(1, 2, 0).mul(255.0).round_().clamp_(0, 255)
    return pixels.to(torch.uint8).numpy()


def stretch(image: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """``LetterBox(canvas, scale_fill=True)``: ``uint8 [H, W, 3]`` → ``uint8 [h, w, 3]`` (bilinear, no padding)."""
    h, w = canvas
    return image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def top_k(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, index)`` ``[B, k]`` of ``RTDETRDecoder.postprocess`` from the class logits ``FloatTensor[B, Q, nc]``:
    query ``index // nc``, class ``index % nc``."""
    q, nc = logits.shape[-2:]
    return logits.sigmoid().flatten(1).topk(min(q, q * nc), dim=1)


class Replay:
    """``RTDETRDecoder.forward`` re-run with autograd on detached channels_last leaves of one capture's levels.

    Attributes:
        leaves: ``name → FloatTensor[1, C, h, w]`` (``requires_grad``).
        logits: ``FloatTensor[1, Q, nc]`` of the eval decoder layer, in the graph of :attr:`leaves`.
    """

    def __init__(self, head: nn.Module, levels: OrderedDict[str, torch.Tensor]) -> None:
        self.leaves = OrderedDict((k, v[None].detach().contiguous(memory_format=torch.channels_last).requires_grad_(True))
                                  for k, v in levels.items())
        with torch.enable_grad():
            _, raw = head(list(self.leaves.values()))
        self.logits: torch.Tensor = raw[1][-1]

    def gradients(self, query: int, cls: int) -> OrderedDict[str, torch.Tensor]:
        """``name → FloatTensor[C, h, w]``: ``d logits[0, query, cls] / d level`` (zeros where it does not reach)."""
        names = list(self.leaves)
        grads = torch.autograd.grad(self.logits[0, query, cls], [self.leaves[n] for n in names], retain_graph=True, allow_unused=True)
        return OrderedDict((n, (g[0] if g is not None else torch.zeros_like(self.leaves[n][0])).detach().contiguous())
                           for n, g in zip(names, grads, strict=True))


@dataclass(frozen=True, eq=False)
class UltralyticsRtDetrFamily(Family):
    """ultralytics ``RTDETRDetectionModel`` s (module docstring): frozen settings.

    Attributes:
        imgsz: the size images are stretched to; ``None`` until :meth:`for_model` reads the model's own
            (its training ``imgsz``, else 640).
        conf: the predictor's score threshold (:data:`DEFAULT_CONF`).
        max_det: its cap on detections per image (the predictor's 300).
    """

    name = "ultralytics-rtdetr"
    box_local_gradients: ClassVar[bool] = True  # from the capture, by a replay of the head alone
    handles = HANDLES
    imgsz: int | tuple[int, int] | None = None
    conf: float = DEFAULT_CONF
    max_det: int = 300

    def for_model(self, model: nn.Module) -> UltralyticsRtDetrFamily:
        """This family with the model's own image size when it has none."""
        return self if self.imgsz is not None else dataclasses.replace(self, imgsz=self.image_size(model))

    def network(self, model: Any) -> nn.Module:
        """``model``'s ``RTDETRDetectionModel`` (see :func:`rtdetr_network`)."""
        if (net := rtdetr_network(model)) is None:
            raise DetectorRuntimeError(f"{type(model).__name__} is not an ultralytics RTDETRDetectionModel")
        return net

    def head(self, model: Any) -> Any:
        """The ``RTDETRDecoder`` (the target layer)."""
        net: Any = self.network(model)
        return net.model[-1]

    def image_size(self, model: Any) -> int | tuple[int, int]:
        """The family's size, else the ``RTDETR`` object's overrides, the model's training ``imgsz``, 640."""
        if self.imgsz is not None:
            return self.imgsz
        return trained_imgsz(model, self.network(model), DEFAULT_IMGSZ)

    def canvas(self, model: Any) -> tuple[int, int]:
        """``(h, w)`` every image is stretched to."""
        return input_shape(self.image_size(model), STRIDE)

    # -- Family -------------------------------------------------------------------------------------
    def matches(self, model: nn.Module) -> bool:
        return rtdetr_network(model) is not None

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        net: Any = rtdetr_network(model)
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
        return {
            "canvas": HookPoint(net, "input", take=lambda args: (int(args[0].shape[-2]), int(args[0].shape[-1]))),
            "features": HookPoint(head, "input", take=lambda args: list(args[0])),
            "class_logits": HookPoint(head, take=lambda out: out[1][1][-1].detach()),  # [B, Q, nc]: the eval layer's
        }

    def features(self, captured: dict[str, Any]) -> Any:
        """The head's input levels, named ``P<log2(canvas height / cells)>`` (``P3``, ``P4``, ``P5``)."""
        levels, canvas = captured.get("features"), captured.get("canvas")
        if levels is None:
            return None
        names = [f"P{round(math.log2(canvas[0] / t.shape[-2]))}" if canvas else str(i) for i, t in enumerate(levels)]
        return OrderedDict(zip(names, levels, strict=True))

    def run(self, detector: DetectorView, images: list[torch.Tensor]) -> list[RawOutput]:
        """Detections of ``images`` (``FloatTensor[3, H, W]`` in ``[0, 1]``) as ``RTDETRPredictor`` makes them."""
        import_ultralytics()
        net: Any = self.network(detector.model)
        head: Any = net.model[-1]
        if isinstance(head.anchors, torch.Tensor) and head.anchors.is_inference():  # an inference_mode forward cached them:
            head.shapes = None  # rebuild, or a replay's backward fails (ultralytics' own heatmap does the same)
        pixels = [_uint8(im) for im in images]
        canvas = self.canvas(detector.model)
        x = torch.from_numpy(np.stack([stretch(p, canvas) for p in pixels])).to(detector.device)
        with torch.no_grad():
            y = net(x.permute(0, 3, 1, 2).contiguous().float().div(255))[0]  # [B, k, 6]: cx, cy, w, h, score, class
        if not (isinstance(y, torch.Tensor) and y.ndim == 3 and y.shape[-1] == 6):
            raise DetectorRuntimeError(f"{HEAD} returned {type(y).__name__} {list(getattr(y, 'shape', []))} where ultralytics "
                                       ">= 8.4.50 returns [B, k, 6] top-k rows; upgrade ultralytics (pip install -U "
                                       "'pytest-camaudit[yolo]')")
        out = []
        for rows, p in zip(y.detach().float().cpu(), pixels, strict=True):
            rows = rows[rows[:, 4] > self.conf][: self.max_det]
            h0, w0 = p.shape[:2]
            cx, cy, w, h = rows[:, :4].unbind(-1)
            boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * rows.new_tensor([w0, h0, w0, h0])
            out.append({"boxes": boxes, "labels": rows[:, 5].round().long() + 1, "scores": rows[:, 4].clone()})
        return out

    def geometry(self, captured: dict[str, Any], original: tuple[int, int], index: int = 0) -> Geometry:
        """The stretch: the whole canvas is the image, scaled by ``h / H0`` and ``w / W0`` independently."""
        return Geometry.identity(*original) if (c := captured.get("canvas")) is None else Geometry(original, c, c, (0.0, 0.0))

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        """Each detection's query, checked against the head's top-k; the class logits the replay must reproduce."""
        logits = captured.get("class_logits")
        if logits is None or not capture.detections:
            return {}
        scores, index = top_k(logits[:1])
        nc, n = int(logits.shape[-1]), len(capture.detections)
        queries, classes = (index[0, :n] // nc).tolist(), (index[0, :n] % nc).tolist()
        for det, q, c, s in zip(capture.detections, queries, classes, scores[0, :n].tolist(), strict=True):
            if det.label - 1 != c or abs(det.score - s) > 1e-6 * max(1.0, s):
                raise DetectorRuntimeError(f"{det.describe()} is not row {det.index} of {HEAD}'s top-k (query {q}, class {c}, "
                                           f"score {s:.6f}); was the head's post-processing changed?")
        return {"queries": queries, "logits": logits[0]}

    def query_of(self, capture: Capture, detection: Detection) -> int:
        """The decoder query ``detection`` came from."""
        return int(capture.memo["queries"][detection.index])

    def replay(self, detector: DetectorView, capture: Capture) -> Replay:
        """The head re-run on the capture's levels: once per image, kept in ``capture.graphs`` (freed with it)."""
        replay = capture.graphs.get("rtdetr")
        if replay is None:
            replay = Replay(self.head(detector.model), capture.levels)
            if not torch.equal(replay.logits[0].detach(), capture.memo["logits"]):
                diff = float((replay.logits[0].detach() - capture.memo["logits"]).abs().max())
                raise DetectorRuntimeError(f"re-running {HEAD} on the captured levels changed its class logits by {diff:.3g}; "
                                           "the head reads more than its input levels")
            capture.graphs["rtdetr"] = replay
        return replay

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        """``d logit / d level`` of the detection's class *logit*, by the head's replay (every level)."""
        if "queries" not in capture.memo:
            return None
        return self.replay(detector, capture).gradients(self.query_of(capture, detection), detection.label - 1)

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        raise DetectorRuntimeError(
            "AblationCAM is not available for the ultralytics-rtdetr family: a detection is a decoder query chosen by a top-k "
            "over every cell of every level, reading every level through deformable attention, so no window of one level "
            f"re-scores it; {UNAVAILABLE_ALTERNATIVES}")

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> Any:
        raise DetectorRuntimeError(
            "attention relevance is not available for the ultralytics-rtdetr family: its decoder reads the image through "
            "deformable attention (a few learned sampling points per query), not an attention matrix over image tokens, so "
            f"Chefer et al.'s rules do not apply; {UNAVAILABLE_ALTERNATIVES}")

    def fill_colour(self, detector: DetectorView) -> np.ndarray:
        """Grey 114: ultralytics' padding value, what the borders of its training mosaics look like."""
        return np.array([114, 114, 114], dtype=np.uint8)


FAMILY = UltralyticsRtDetrFamily()


def rtdetr_detector(model: nn.Module, imgsz: int | tuple[int, int] | None = None, conf: float = DEFAULT_CONF, max_det: int = 300,
                    name: str | None = None, meta: dict[str, Any] | None = None, class_names: Sequence[str] | None = None) -> Detector:
    """Wrap an ultralytics ``RTDETRDetectionModel`` or ``RTDETR`` object with its own image size and thresholds.

    A conftest may return the model itself (the family's defaults apply) or this, e.g.
    ``rtdetr_detector(RTDETR("best.pt"), conf=0.25)``.

    Raises:
        ModelLoadError: ``model`` is not an ultralytics RT-DETR.
    """
    net = rtdetr_network(model)
    if net is None:
        kind = type(getattr(model, "_modules", {}).get("model", model)).__name__
        raise ModelLoadError(f"{kind} is not an ultralytics RTDETRDetectionModel (a DetectionModel with an {HEAD} head)")
    family = dataclasses.replace(FAMILY, imgsz=imgsz, conf=float(conf), max_det=int(max_det)).for_model(model)
    return Detector.wrap(net, class_names, name=name or type(model).__name__, meta={"imgsz": family.imgsz, **dict(meta or {})},
                         family=family)


# -- loading -----------------------------------------------------------------------------------------


def is_rtdetr_yaml(spec: str) -> bool:
    """An architecture name ultralytics resolves itself (``rtdetr-l.yaml``: no local file, named ``rtdetr…``),
    or a local yaml with an ``RTDETRDecoder`` layer."""
    path = Path(spec).expanduser()
    if not path.is_file():
        return "://" not in spec and path.name.lower().startswith("rtdetr")
    try:
        return bool(_RTDETR_YAML.search(path.read_text(encoding="utf-8", errors="replace")[:100_000]))
    except OSError:
        return False


def accepts(spec: str) -> bool:
    """Whether this family loads file ``spec``: an RT-DETR checkpoint (by its pickle, not unpickled) or architecture file."""
    return is_rtdetr_yaml(spec) if spec.lower().endswith((".yaml", ".yml")) else bool(_RTDETR_PICKLE.search(pickle_of(spec)))


def _load_checkpoint(spec: str, weights: str | None) -> Detector:
    """An RT-DETR ``.pt`` through ultralytics' own loader (``weights_only=False``: trusted files only)."""
    path = Path(spec).expanduser()
    if weights is not None:
        raise ModelLoadError(f"--camaudit-weights does not apply to --camaudit-model={spec} (an ultralytics checkpoint carries "
                             "its own weights); drop --camaudit-weights")
    import_ultralytics()
    from ultralytics.nn.tasks import load_checkpoint

    try:
        model, _ = load_checkpoint(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ModelLoadError(f"cannot load the ultralytics checkpoint {path} ({type(exc).__name__}: {first}); "
                             "check that the file is complete and was saved by ultralytics") from exc
    return rtdetr_detector(model, name=path.name, meta={"checkpoint": str(path)})


def _load_config(spec: str, weights: str | None) -> Detector:
    """``RTDETRDetectionModel(cfg=spec)`` with ultralytics' random initialisation (or ``--camaudit-weights``), in eval mode."""
    import_ultralytics()
    from ultralytics.nn.tasks import RTDETRDetectionModel

    try:
        model = RTDETRDetectionModel(cfg=spec, verbose=False)
    except Exception as exc:
        raise ModelLoadError(f"cannot build an ultralytics RT-DETR from {spec} ({type(exc).__name__}: {exc}); pass an architecture "
                             "ultralytics ships (rtdetr-l.yaml, rtdetr-x.yaml…) or a path to your own") from exc
    meta = {"config": spec, "weights": "random (ultralytics' initialisation): its maps are noise"}
    if weights is not None:
        state, _ = load_state_dict_file(Path(weights))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights file {weights} does not fit {spec}: {str(exc).splitlines()[0]}") from exc
        meta["weights"] = weights
    return rtdetr_detector(model.eval(), name=spec, meta=meta)


def load(spec: str, weights: str | None, offline: bool) -> Detector:
    """``--camaudit-model`` = an RT-DETR ``.pt`` or architecture file."""
    return _load_config(spec, weights) if spec.lower().endswith((".yaml", ".yml")) else _load_checkpoint(spec, weights)
