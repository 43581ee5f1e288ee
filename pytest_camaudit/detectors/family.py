"""What a detector family knows: :class:`Family`, and the plain values it hands the engine.

A family says how to run a model and what to capture while it runs (:class:`HookPoint`; the
engine owns the hooks' lifetime), how its preprocessing maps original pixels onto the backbone's
canvas (:class:`~pytest_camaudit.datatypes.Geometry`), and, where the architecture allows, how one
detection's score is recomputed from the captured features alone — for gradients through the
box's own path (:meth:`Family.box_gradients`) and for AblationCAM (:meth:`Family.local_scorer`).

The base :class:`Family` is the *torchvision protocol*, which any model can follow:

* ``model(images)`` in eval mode takes a list of ``FloatTensor[3, H, W]`` in ``[0, 1]`` and returns
  one dict per image with ``boxes`` ``FloatTensor[N, 4]`` (``[x1, y1, x2, y2]`` in input pixels),
  ``labels`` ``Int64Tensor[N]`` and ``scores`` ``FloatTensor[N]``;
* the target layer (default ``model.backbone``) returns ``Tensor[B, C, h, w]`` or a dict / list of
  them in the same forward; for gradient methods the scores depend differentiably on it;
* resize / padding, if any, happens in ``model.transform`` (a torchvision
  ``GeneralizedRCNNTransform``), so maps land on the right pixels.

A family is one module in its ecosystem's folder (``detectors/torchvision/``, ``detectors/ultralytics/``,
``detectors/transformers/``, or a package of its own registered by entry point): it declares what it
handles (``HANDLES = Handles(...)``, :mod:`.handles`), defines its :class:`Family` subclass as a frozen
dataclass of settings (image size, thresholds, processor) and ``FAMILY``, its default instance. A
family keeps no per-image state: what one image's forward left is the :class:`Capture` (its
``memo``, and ``graphs`` for autograd graphs built on demand).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import nn

from ..datatypes import Detection, Geometry, PredictedMask
from ..errors import DetectorRuntimeError
from .handles import Handles

RawOutput = dict[str, torch.Tensor]
"""One image's detections in the torchvision convention: ``boxes [N, 4]``, ``labels [N]``, ``scores [N]``."""

ScoreGraph = tuple["OrderedDict[str, torch.Tensor]", torch.Tensor]
"""``(levels FloatTensor[1, C, h, w] with grad, scores FloatTensor[N] with grad)`` of an autograd forward."""


class DetectorView(Protocol):
    """What a family reads of the :class:`~pytest_camaudit.detectors.base.Detector` it serves (read-only: a detector is frozen)."""

    @property
    def model(self) -> nn.Module: ...

    @property
    def name(self) -> str: ...

    @property
    def target_layer(self) -> nn.Module: ...

    @property
    def class_names(self) -> list[str]: ...

    @property
    def device(self) -> torch.device: ...


@dataclass(frozen=True)
class HookPoint:
    """A module to hook during the capturing forward: its ``output``, its positional ``input`` s, or its whole ``call``.

    ``take`` picks what to keep at hook time (e.g. tensors a later step replaces in a dict);
    default: the whole output, the input tuple, or for ``"call"`` the pair ``(args, kwargs)``
    (the keyword arguments a transformers model passes its encoder and decoder).
    """

    module: nn.Module
    kind: Literal["output", "input", "call"] = "output"
    take: Callable[[Any], Any] | None = None


@dataclass
class Capture:
    """What one hooked forward of one image left behind.

    Attributes:
        detections: every detection, score descending, in original pixels.
        geometry: how the image travelled into the backbone.
        levels: ``name → FloatTensor[C, h, w]`` target-layer activations, detached.
        memo: per-family facts to re-score or differentiate one detection from ``levels`` alone
            (R-CNN: each detection's proposal; one-stage heads: anchors…). Small tensors only.
        graph: the autograd graph of the forward (:data:`ScoreGraph`) when one was asked for;
            only families without box-local gradients need it.
        graphs: autograd graphs a family builds from the capture on demand (a transformer's
            replay), kept for the image's other boxes; dropped with :attr:`graph` and when the
            test that made them ends (:meth:`drop_graphs`).
        masks: detection index → the detector's own mask of it, for detectors that predict masks
            (a ``masks`` output of ``FloatTensor[N, 1, H, W]`` on the original pixels: Mask R-CNN).
    """

    detections: list[Detection]
    geometry: Geometry
    levels: OrderedDict[str, torch.Tensor]
    memo: dict[str, Any] = field(default_factory=dict)
    graph: ScoreGraph | None = None
    graphs: dict[str, Any] = field(default_factory=dict)
    masks: dict[int, PredictedMask] = field(default_factory=dict)

    def drop_graphs(self, forward: bool = True) -> None:
        """Free the autograd graphs built on demand, and the forward's own unless ``forward=False``."""
        self.graphs.clear()
        if forward:
            self.graph = None


@dataclass
class LocalScorer:
    """One detection's score as a function of a window of one feature level (for AblationCAM).

    Attributes:
        level: name of the level whose channels the window holds.
        window: ``FloatTensor[C, h, w]`` (detached) the score is computed from.
        score: ``FloatTensor[B, C, h, w]`` (perturbed windows) → ``FloatTensor[B]`` scores.
        support: ``BoolTensor[h_l, w_l]``, the cells of the whole level the window reads.
        base: the score of the unperturbed window (close to, not always equal to, the
            detection's score: a two-stage detector scored the proposal its box was regressed from).
    """

    level: str
    window: torch.Tensor
    score: Callable[[torch.Tensor], torch.Tensor]
    support: torch.Tensor
    base: float = float("nan")


@dataclass(frozen=True)
class AttentionMaps:
    """What attention relevance (Chefer et al. 2021, :mod:`pytest_camaudit.methods.attention`) reads of one detection.

    Attributes:
        level: name of the level whose cells are the image tokens; ``shape`` its ``(h, w)``.
        score: the scalar explained (the detection's class logit), in the graph of the maps below.
        encoder: per encoder layer, self-attention probabilities ``FloatTensor[1, heads, HW, HW]``.
        decoder: per decoder layer, self-attention ``FloatTensor[1, heads, Q, Q]``.
        cross: per decoder layer, cross-attention from queries to image tokens ``FloatTensor[1, heads, Q, HW]``.
        query: the decoder query the detection came from (single stream: its token's index).
        tokens: single-stream models (no decoder: YOLOS) only: the image tokens' positions in the
            sequence (``decoder`` and ``cross`` are then empty and ``encoder`` holds ``[N, N]`` maps
            over the whole sequence).
    """

    level: str
    shape: tuple[int, int]
    score: torch.Tensor
    encoder: list[torch.Tensor]
    decoder: list[torch.Tensor]
    cross: list[torch.Tensor]
    query: int
    tokens: slice | None = None


def default_levels(output: Any) -> OrderedDict[str, torch.Tensor]:
    """Target-layer output → ordered ``name → Tensor[B, C, h, w]`` (an FPN dict, a list, or one tensor)."""
    if isinstance(output, torch.Tensor):
        return OrderedDict([("0", output)])
    if isinstance(output, dict):
        return OrderedDict((str(k), v) for k, v in output.items() if isinstance(v, torch.Tensor) and v.ndim == 4)
    if isinstance(output, (list, tuple)):
        return OrderedDict((str(i), v) for i, v in enumerate(output) if isinstance(v, torch.Tensor) and v.ndim == 4)
    raise TypeError(f"the target layer returned a {type(output).__name__}; expected a tensor [B, C, h, w] or a dict of them")


class Family:
    """How the plugin runs and explains one architecture family; the base is the torchvision protocol.

    Subclass it in one module per family (see the module docstring), or in a conftest and pass an
    instance to :func:`~pytest_camaudit.detectors.registry.register_family`.
    """

    name: ClassVar[str] = "torchvision-protocol"
    box_local_gradients: ClassVar[bool] = False
    """True when :meth:`box_gradients` works from a capture without an autograd graph."""
    handles: ClassVar[Handles | None] = None
    """The family's declaration (its module's ``HANDLES``): :meth:`matches` reads its ``classes``."""

    def matches(self, model: nn.Module) -> bool:
        """Whether this family knows ``model`` (the first that matches wins): by default, a class its
        declaration names (``handles.classes``); a family without one matches nothing."""
        handles = type(self).handles
        return handles is not None and bool(handles.classes) and handles.claims(type(model))

    def for_model(self, model: nn.Module) -> Family:
        """The family complete for ``model`` (settings read from it: its image size, default processor…);
        :meth:`~pytest_camaudit.detectors.base.Detector.wrap` calls it once. Default: ``self``."""
        return self

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        """The module whose output the CAMs explain (``None``: the model has no default)."""
        layer = getattr(model, "backbone", None)
        return layer if isinstance(layer, nn.Module) else None

    def levels(self, output: Any) -> OrderedDict[str, torch.Tensor]:
        """The captured target-layer output as ``name → FloatTensor[B, C, h, w]``."""
        return default_levels(output)

    def class_names(self, model: nn.Module) -> list[str] | None:
        """Class names from the model itself (index = label), when it carries them."""
        for attr in ("class_names", "classes", "categories"):
            names = getattr(model, attr, None)
            if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
                return list(names)
        return None

    def num_classes(self, model: nn.Module) -> int | None:
        """Number of label indices the model predicts (background included), when the family can tell."""
        return None

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        """What the capturing forward records: ``"features"`` (the target layer's output) at least."""
        points = {"features": HookPoint(detector.target_layer)}
        transform = getattr(detector.model, "transform", None)
        if isinstance(transform, nn.Module):
            points["image_list"] = HookPoint(transform)
        return points

    def features(self, captured: dict[str, Any]) -> Any:
        """The target layer's output in what the hooks captured (``None``: it did not run): the
        ``"features"`` point's; a family whose levels come from several modules assembles them here."""
        return captured.get("features")

    def run(self, detector: DetectorView, images: list[torch.Tensor]) -> Any:
        """The model's raw outputs for ``images`` (``FloatTensor[3, H, W]`` in ``[0, 1]``, on its device)."""
        return detector.model(images)

    def geometry(self, captured: dict[str, Any], original: tuple[int, int], index: int = 0) -> Geometry:
        """Image ``index``'s geometry from what the hooks captured (``model.transform``'s ``ImageList``)."""
        il = captured.get("image_list")
        il = il[0] if isinstance(il, tuple) else il
        if il is not None and hasattr(il, "image_sizes"):
            hr, wr = (int(v) for v in il.image_sizes[index])
            hp, wp = (int(v) for v in il.tensors.shape[-2:])
            return Geometry(original, (hr, wr), (hp, wp))
        return Geometry.identity(*original)

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        """Per-detection facts for :meth:`box_gradients` / :meth:`local_scorer`, resolved right after the forward."""
        return {}

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        """``d score(detection) / d level`` through the detection's own path, from ``capture`` alone.

        Returns ``None`` when the family has no such path: the engine then differentiates the
        forward's autograd graph (:meth:`Detector.graph_gradients`).
        """
        return None

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        """The detection's score as a function of a window of one level (AblationCAM)."""
        raise DetectorRuntimeError(
            f"AblationCAM does not know how {detector.name} ({type(detector.model).__name__}) scores a box from its "
            "target layer; add a family for it (pytest_camaudit.detectors.base.Family.local_scorer), or use a gradient "
            "method or drise"
        )

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> AttentionMaps:
        """The attention maps and the score of the detection that attention relevance (Chefer et al. 2021) reads.

        Only transformer families whose decoder attends over image tokens implement it; the maths
        is :mod:`pytest_camaudit.methods.attention`'s.
        """
        raise DetectorRuntimeError(
            "attention relevance needs a transformer detector with attention maps (DETR family); "
            "use eigengradcam, hirescam, layercam or drise"
        )

    def fill_colour(self, detector: DetectorView) -> np.ndarray:
        """``uint8 [3]`` neutral fill: the model's normalisation mean (0 after normalising), else mid grey."""
        mean = getattr(getattr(detector.model, "transform", None), "image_mean", None)
        if mean is not None and len(mean) == 3:
            return np.clip(np.round(np.asarray(mean, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.array([128, 128, 128], dtype=np.uint8)
