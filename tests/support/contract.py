"""The registry of probe models the family-contract suite (``tests/detectors/contract``) runs on.

A family is tested by adding one :class:`Probe` to :data:`PROBES`: a tiny model of it (a config with
random weights, or weights set by hand), how it is built, and what is particular to it (which
methods it refuses, how the full forward's gradient is taken, its bright-spot twin). The suite
then checks what every family guarantees: the registry picks it, geometry is exact at odd sizes,
a bright spot is found within one feature cell, per-box gradients equal the full graph's, every
CAM method maps or names the alternatives, no hook of ours is left, broken inputs give clear
errors, the context re-score and the discovery profile run, the family keeps no per-image state.

Builders import their framework lazily (``requires``: the suite skips a probe whose extra is not
installed) and are cached: one model per process.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from pytest_camaudit.datatypes import Detection
from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.family import Family

Reference = Callable[[Detector, np.ndarray, "object", Detection], list[torch.Tensor]]
"""``(detector, image, analysis, detection) → per level, d score / d level through one autograd forward
of the whole model`` (the analysis gives what the family traced, e.g. the detection's decoder query)."""

Logit64 = Callable[[Detector, "object", Detection, "OrderedDict[str, torch.Tensor]"], float]
"""``(detector, analysis, detection, levels) → the detection's class logit`` computed in float64 from ``levels``
(``name → FloatTensor[C, h, w]``, the captured levels perturbed): the ground truth a finite difference takes."""

NOT_A_TRANSFORMER = r"attention relevance needs a transformer detector with attention maps \(DETR family\); use eigengradcam"
"""What :meth:`Family.attention_maps` says on every family without attention over image tokens."""


@dataclass(frozen=True)
class Probe:
    """One family's probe model and what is particular to it.

    Attributes:
        id: the test id.
        family: the ``Family.name`` the registry must pick for the model (its declaration's ``name``).
        build: the probe detector (cached by the builder): on a noise image of ``size`` it returns
            at least one detection.
        size: an odd, non-square image size ``(h, w)``.
        image: the probe image (``uint8 [h, w, 3]`` of ``size``); ``None``: noise (seed 0). A trained model
            gets a scene of its world.
        spot: a twin whose features are pooled brightness (no detections needed): a bright spot on
            black must peak within one feature cell of where it is. ``None``: no such twin.
        spot_cell: the cell that bounds the bright spot's distance: ``"grid"`` (the common grid the
            CAM is computed on), ``"coarsest"`` (the coarsest level the target layer carries) or a
            stride in canvas pixels. A deep constant-weight backbone shifts a cell's receptive-field
            centre from its nominal centre (zero padding of every strided convolution: ~10 canvas px
            in a ResNet-50, measured), which a fine grid resolves; a wrong resize, stretch, padding
            or letterbox misses by far more.
        reference: the full forward's per-box gradient (:data:`Reference`); ``None``: the engine's
            own whole-forward graph of the same model under the torchvision protocol (a
            :class:`Family` without a box path), which differentiates the same score.
        unavailable: method name → regex of the error it raises on this family (the error must
            name the methods to use instead).
        nonempty: methods whose map must not be empty; ``None``: every available method.
        fill: the context check's fill colour, when the family has its own.
        library_hooks: whether the framework leaves hooks of its own on the model (transformers'
            output recorders after an ``output_attentions=True`` forward); without, a model must
            carry no hook at all after an audit.
        requires: the optional framework the probe needs (``"ultralytics"``, ``"transformers"``).
        logit64: the detection's logit from the levels in float64 (:data:`Logit64`), where affordable: the suite
            checks the per-box gradient against a central finite difference of it (a full autograd forward
            can share a framework bug with the family's path; a finite difference cannot). ``None``: not checked.
        directional: ``(detector, analysis, detection, gradients) → (finite difference, analytic, scale)``:
            the detection's per-box gradient along a random direction, by float64 finite differences of
            the family's own re-computation and by the dot product (:func:`support.hf.directional_derivatives`);
            ``None``: no such check (a family without a box-local re-computation).
        discovery: HOOK for the discovery profile (``--camaudit-discover``: a detection re-scored with each region
            around its box filled, through the engine's batched ``detect``), ``(engine, analysis,
            detection) → region → share lost``; ``None``: :func:`discovery_profile`, discovery's own.
            A family whose profile needs more (its own fill, regions) hooks it in here.
    """

    id: str
    family: str
    build: Callable[[], Detector]
    size: tuple[int, int] = (157, 203)
    image: Callable[[], np.ndarray] | None = None
    spot: Callable[[], Detector] | None = None
    spot_cell: str | int = "grid"
    reference: Reference | None = None
    unavailable: Mapping[str, str] = field(default_factory=lambda: {"attention": NOT_A_TRANSFORMER})
    nonempty: tuple[str, ...] | None = None
    fill: tuple[int, int, int] | None = None
    library_hooks: bool = False
    requires: str | None = None
    discovery: Callable[..., Mapping[str, float | None]] | None = None
    logit64: Logit64 | None = None
    directional: Callable[..., tuple[float, float, float]] | None = None


# -- builders (lazy: each framework is imported by the probe that needs it) -----------------------


def _torchvision(builder: str) -> Callable[[], Detector]:
    def build() -> Detector:
        from support.torchvision import small

        return small(builder)

    return build


def _torchvision_spot(builder: str) -> Callable[[], Detector]:
    def build() -> Detector:
        from support.torchvision import spot_twin

        return spot_twin(builder)

    return build


def _zoo(name: str) -> Callable[[], Detector]:
    def build() -> Detector:
        return _load(name)

    return build


def _load(name: str) -> Detector:
    from pytest_camaudit.detectors.loading import load_detector

    cached = _ZOO.get(name)
    if cached is None:
        cached = _ZOO[name] = load_detector(name, device="cpu")
    return cached


_ZOO: dict[str, Detector] = {}


def _shapes_scene() -> np.ndarray:
    from pytest_camaudit.zoo.world import make_layout, render

    return render(make_layout(20_000_003))[2:159, 5:156]  # 157 x 151: an odd crop of a 160-px scene


def _yolo(arch: str, end2end: bool = False) -> Callable[[], Detector]:
    def build() -> Detector:
        from support.yolo import detector

        return detector(arch, end2end)

    return build


def _yolo_spot() -> Detector:
    from support.yolo import probe_detector

    return probe_detector(320)


def _yolo_reference(detector: Detector, image: np.ndarray, analysis: object, detection: Detection) -> list[torch.Tensor]:
    from support.yolo import full_graph_gradients

    cell = detector.family.cell_of(analysis.capture, detection)  # type: ignore[attr-defined]
    return full_graph_gradients(detector, image, cell, detection.label - 1)


def _yolo_logit64(detector: Detector, analysis: object, detection: Detection, levels: OrderedDict[str, torch.Tensor]) -> float:
    from support.yolo import logit64

    return logit64(detector, detector.family.cell_of(analysis.capture, detection), detection.label - 1, levels)  # type: ignore[attr-defined]


def _rtdetr() -> Detector:
    from support.rtdetr import detector

    return detector()


def _rtdetr_spot() -> Detector:
    from support.rtdetr import spot_detector

    return spot_detector()


def _rtdetr_reference(detector: Detector, image: np.ndarray, analysis: object, detection: Detection) -> list[torch.Tensor]:
    from support.rtdetr import full_graph_gradients

    query = detector.family.query_of(analysis.capture, detection)  # type: ignore[attr-defined]
    return full_graph_gradients(detector, image, query, detection.label - 1)


def _rtdetr_logit64(detector: Detector, analysis: object, detection: Detection, levels: OrderedDict[str, torch.Tensor]) -> float:
    from support.rtdetr import logit64

    return logit64(detector, levels, detector.family.query_of(analysis.capture, detection), detection.label - 1)  # type: ignore[attr-defined]


def _hf(family: str) -> Callable[[], Detector]:
    def build() -> Detector:
        from support import hf

        return hf.tiny_detector(family)

    return build


def _hf_spot(family: str) -> Callable[[], Detector]:
    def build() -> Detector:
        from pytest_camaudit.detectors.transformers.folders import hf_detector
        from support import hf

        return hf_detector(hf.probe(family), hf.spot_processor(family), threshold=1.0)  # no detections

    return build


def _hf_reference(detector: Detector, image: np.ndarray, analysis: object, detection: Detection) -> list[torch.Tensor]:
    from support.hf import full_graph_gradients

    query = detector.family.query_of(analysis.capture, detection)  # type: ignore[attr-defined]
    shapes = [tuple(v.shape) for v in analysis.capture.levels.values()]  # type: ignore[attr-defined]
    return full_graph_gradients(detector, image, query, detection.label - 1, shapes)


def _hf_directional(detector: Detector, analysis: object, detection: Detection, gradients: list[torch.Tensor]) -> tuple[float, float, float]:
    from support.hf import directional_derivatives

    return directional_derivatives(detector, analysis, detection, gradients)


def _hf_probe(family: str, relevance: bool = False, fill: tuple[int, int, int] = (128, 128, 128), spot: bool = True,
              size: tuple[int, int] = (203, 317), gradcam: bool = False) -> Probe:
    """The probe of a transformers family: its tiny model, its spot twin, the full graph and float64 checks.

    GradCAM's map (channel-mean gradient weights, then ReLU) may be empty on a random model; ``gradcam``
    asks for it to be non-empty on this one."""
    unavailable = {"ablationcam": f"AblationCAM is not available for the {family} family"}
    nonempty = ("eigencam", "eigengradcam", "hirescam", "layercam", "drise") + (("gradcam",) if gradcam else ())
    if relevance:
        nonempty += ("attention",)
    else:
        unavailable["attention"] = f"attention relevance is not available for the {family} family"
    return Probe(family, family, _hf(family), size=size, spot=_hf_spot(family) if spot else None, spot_cell="coarsest",
                 reference=_hf_reference, directional=_hf_directional, fill=fill, library_hooks=True, requires="transformers",
                 nonempty=nonempty, unavailable=unavailable)


def graph_twin(detector: Detector) -> Detector:
    """``detector`` under the plain torchvision protocol: gradients through the whole forward's autograd graph."""
    return dataclasses.replace(detector, family=Family())


def discovery_profile(engine: object, analysis: object, detection: Detection) -> dict[str, float | None]:
    """``--camaudit-discover``'s context profile of ``detection``: region → share of its score lost with that
    region around its box filled, re-scored through the engine's batched ``detect``
    (:func:`pytest_camaudit.audit.evidence.profile`); ``None`` for a region outside the image."""
    from pytest_camaudit.audit.evidence import profile

    return profile(analysis, detection, engine)  # type: ignore[arg-type]


# -- the registry: one entry per family (or per model of a family worth its own check) -----------

PROBES: tuple[Probe, ...] = (
    Probe("rcnn", "rcnn", _torchvision("fasterrcnn_resnet50_fpn"), spot=_torchvision_spot("fasterrcnn_resnet50_fpn"),
          spot_cell=16, nonempty=("eigencam", "hirescam")),
    Probe("retinanet", "retinanet", _torchvision("retinanet_resnet50_fpn"), spot=_torchvision_spot("retinanet_resnet50_fpn"),
          spot_cell=16, nonempty=("eigencam", "hirescam")),
    Probe("fcos", "fcos", _torchvision("fcos_resnet50_fpn"), spot=_torchvision_spot("fcos_resnet50_fpn"),
          spot_cell=16, nonempty=("eigencam", "hirescam")),
    Probe("ssd", "ssd", _torchvision("ssdlite320_mobilenet_v3_large"), nonempty=("eigencam", "hirescam")),
    Probe("zoo-shapes", "rcnn", _zoo("shapes"), size=(157, 151), image=_shapes_scene),
    Probe("yolo11n", "ultralytics-yolo", _yolo("yolo11n"), spot=_yolo_spot, reference=_yolo_reference, fill=(114, 114, 114),
          requires="ultralytics", logit64=_yolo_logit64),
    Probe("yolo26n-end2end", "ultralytics-yolo", _yolo("yolo26n", True), reference=_yolo_reference, fill=(114, 114, 114),
          requires="ultralytics", logit64=_yolo_logit64),
    Probe("zoo-shapes-yolo", "ultralytics-yolo", _zoo("shapes-yolo"), size=(157, 151), image=_shapes_scene, reference=_yolo_reference,
          fill=(114, 114, 114), requires="ultralytics", logit64=_yolo_logit64),
    Probe("ultralytics-rtdetr", "ultralytics-rtdetr", _rtdetr, spot=_rtdetr_spot, reference=_rtdetr_reference, fill=(114, 114, 114),
          requires="ultralytics", logit64=_rtdetr_logit64,
          unavailable={"ablationcam": "AblationCAM is not available for the ultralytics-rtdetr family",
                       "attention": "attention relevance is not available for the ultralytics-rtdetr family"}),
    _hf_probe("detr", relevance=True, fill=(124, 116, 104), gradcam=True),
    _hf_probe("rt-detr", gradcam=True),
    _hf_probe("rt-detr-v2"),
    _hf_probe("d-fine"),
    _hf_probe("deimv2"),
    _hf_probe("deformable-detr", fill=(124, 116, 104)),
    _hf_probe("conditional-detr", relevance=True, fill=(124, 116, 104)),
    _hf_probe("dab-detr", relevance=True, fill=(124, 116, 104)),
    _hf_probe("lw-detr", fill=(124, 116, 104)),  # its spot twin carries a channel pattern through the LayerNorms (support.hf_norm_twins)
    _hf_probe("yolos", relevance=True, fill=(124, 116, 104)),
    _hf_probe("pp-doclayout-v3", fill=(0, 0, 0)),  # its processor "normalises" with mean 0
    _hf_probe("pp-doclayout-v4", fill=(0, 0, 0)),
    _hf_probe("pp-doclayout-v2", fill=(0, 0, 0)),
    _hf_probe("table-transformer", relevance=True, fill=(124, 116, 104)),
    _hf_probe("rf-detr", fill=(124, 116, 104)),  # as LW-DETR, with one window (transformers permutes a non-square windowed grid)
)
"""Every probe the contract suite runs; a new family adds one entry here."""
