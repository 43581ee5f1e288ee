"""Registry of CAM methods, and :func:`cam_for`, the one way a map is computed from an analysis.

A method declares whether it explains one detection (``per_box``) and whether it differentiates the
detection's score (``needs_grad``), and computes a :class:`~pytest_camaudit.datatypes.CamMap` on the
original image's pixel grid. Names are lower case without separators (``eigengradcam``);
:func:`canonical_name` folds ``EigenGrad-CAM`` and friends onto them.

The methods (what each is good for: ``docs/methods.md``):

* ``eigencam`` — class-agnostic, no gradients (:mod:`.eigencam`);
* ``eigengradcam``, ``gradcam``, ``gradcam++``, ``hirescam``, ``xgradcam``, ``layercam`` — per
  box, one gradient per box (:mod:`.eigencam`, :mod:`.gradient`);
* ``ablationcam`` — per box, channel ablations re-scored by the box head only (:mod:`.ablation`);
* ``drise`` — per box, black box: random masks, batched forwards (:mod:`.drise`);
* ``attention`` — per box, transformer detectors: attention relevance from the family (:mod:`.attention`).

Register a variant under an existing name to change its settings for a whole run, e.g. in a
``conftest.py``: ``register(drise_method(masks=4000))``.

Import-light: the option parser reads the names here before torch is loaded; each method's module
is imported when it first computes a map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..datatypes import CamMap, Detection

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis
    from .drise import DriseConfig


@dataclass(frozen=True)
class CamMethod:
    """A registered CAM method.

    Attributes:
        name: registry name.
        per_box: True when the map explains one detection (box and label).
        needs_grad: True when it differentiates the detection's score.
        compute: ``(analysis, detection | None) -> CamMap`` of ``[H0, W0]`` original pixels.
        summary: one line for docs and ``--help``.
    """

    name: str
    per_box: bool
    needs_grad: bool
    compute: Callable[[ImageAnalysis, Detection | None], CamMap]
    summary: str


_REGISTRY: dict[str, CamMethod] = {}


def canonical_name(name: str) -> str:
    """``'EigenGrad-CAM'`` → ``'eigengradcam'``: lower case without ``_``, ``-`` or spaces."""
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def register(method: CamMethod) -> CamMethod:
    """Add ``method`` to the registry (a later registration of the same name replaces it)."""
    _REGISTRY[method.name] = method
    return method


def method_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> CamMethod:
    """The registered method ``name`` (any case, separators ignored).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = canonical_name(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown CAM method {name!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def cam_for(analysis: ImageAnalysis, method: str | None = None, detection: Detection | None = None) -> CamMap:
    """The map of ``method`` (default: the engine's) for ``detection`` (per-box methods; a
    class-agnostic method ignores it). Cached on the analysis.

    Raises:
        ValueError: unknown method, or a per-box method without a detection.
    """
    m = get_method(method or analysis.method)
    if m.per_box and detection is None:
        raise ValueError(f"{m.name} explains one detection; pass `detection=`")
    key = (m.name, detection.index if (m.per_box and detection is not None) else None)
    if key not in analysis.maps:
        analysis.maps[key] = m.compute(analysis, detection)
    return analysis.maps[key]


def needs_graph(analysis_engine: Any, method: str | None = None) -> bool:
    """Whether auditing with ``method`` should keep the forward's autograd graph: a gradient method
    on a detector whose family cannot differentiate one detection's own path."""
    m = get_method(method or analysis_engine.method)
    return m.needs_grad and not analysis_engine.detector.family.box_local_gradients


# -- the built-in methods (each module imported on first use) --------------------------------------


def _eigencam(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    from .eigencam import eigencam_map

    return eigencam_map(analysis, detection)


def _eigengradcam(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    from .eigencam import eigengradcam_map

    return eigengradcam_map(analysis, detection)


def _gradient_method(name: str, summary: str) -> CamMethod:
    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .gradient import gradient_cam

        if detection is None:
            raise ValueError(f"{name} explains one detection; pass `detection=`")
        return gradient_cam(analysis, detection, name)

    return CamMethod(name, True, True, compute, summary)


def ablation_method(value: float | None = None, batch_size: int | None = None, name: str = "ablationcam") -> CamMethod:
    """An AblationCAM method (see :mod:`.ablation`); ``register()`` it to use it.

    ``value`` is what an ablated channel is set to (default 0; grad-cam's FasterRCNN layer uses -1000).
    """

    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .ablation import DEFAULT_ABLATION_VALUE, DEFAULT_BATCH, ablation_cam

        if detection is None:
            raise ValueError(f"{name} explains one detection; pass `detection=`")
        cam = ablation_cam(analysis, detection, DEFAULT_ABLATION_VALUE if value is None else value,
                           DEFAULT_BATCH if batch_size is None else batch_size)
        return CamMap(cam.values, name, cam.target, cam.degenerate)

    return CamMethod(name, True, False, compute,
                     "per box: score drop when each feature channel of the box's level is ablated (Desai & Ramaswamy 2020)")


def drise_method(config: DriseConfig | None = None, name: str = "drise", **settings: Any) -> CamMethod:
    """A D-RISE method (see :mod:`.drise`); ``register()`` it to use it.

    ``settings`` are :class:`~pytest_camaudit.methods.drise.DriseConfig` fields, e.g. in a ``conftest.py``::

        from pytest_camaudit.methods import drise_method, register
        register(drise_method(masks=4000, cells=12))  # replaces the default "drise"
    """
    from .drise import DriseConfig

    cfg = config or DriseConfig(**settings)

    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .drise import drise_cam

        if detection is None:
            raise ValueError(f"{name} explains one detection; pass `detection=`")
        cam = drise_cam(analysis, detection, cfg)
        return CamMap(cam.values, name, cam.target, cam.degenerate)

    return CamMethod(name, True, False, compute, f"per box, black-box: {cfg.masks} random masks weighted by IoU × class score (Petsiuk et al. 2021)")


def _attention(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    from .attention import attention_cam

    if detection is None:
        raise ValueError("attention explains one detection; pass `detection=`")
    return attention_cam(analysis, detection)


def _drise_default(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    # the default D-RISE, built on first use so that importing the registry does not import torch
    method = drise_method()
    register(method)
    return method.compute(analysis, detection)


register(CamMethod("eigencam", False, False, _eigencam, "class-agnostic: first principal component of the FPN activations"))
register(CamMethod("eigengradcam", True, True, _eigengradcam, "per box: first principal component of gradient × activation of the box's score"))
register(_gradient_method("gradcam", "per box: channel-mean gradient × activation (Selvaraju et al. 2017)"))
register(_gradient_method("gradcam++", "per box: GradCAM with higher-order positive-gradient weights (Chattopadhay et al. 2018)"))
register(_gradient_method("hirescam", "per box: element-wise gradient × activation, faithful to the score's linearisation"))
register(_gradient_method("xgradcam", "per box: activation-normalised gradient weights (Fu et al. 2020)"))
register(_gradient_method("layercam", "per box: element-wise positive gradient × activation (Jiang et al. 2021)"))
register(ablation_method())
register(CamMethod("drise", True, False, _drise_default, "per box, black-box: 1000 random masks weighted by IoU × class score (Petsiuk et al. 2021)"))
register(CamMethod("attention", True, False, _attention, "per box, transformers: gradient-weighted attention relevance (Chefer et al. 2021)"))
