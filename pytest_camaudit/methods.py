"""Registry of CAM methods the engine can compute from an :class:`~pytest_camaudit.engine.ImageAnalysis`.

A method declares whether it explains one detection (``per_box``) and whether it needs the
forward's autograd graph (``needs_grad``), and computes a :class:`~pytest_camaudit.cams.CamMap` on
the original image's pixel grid. Names are lower case without separators (``eigengradcam``);
:func:`canonical_name` folds ``EigenGrad-CAM`` and friends onto them.

The methods (what each is good for: ``docs/methods.md``):

* ``eigencam`` — class-agnostic, no gradients (:mod:`pytest_camaudit.cams`);
* ``eigengradcam``, ``gradcam``, ``gradcam++``, ``hirescam``, ``xgradcam``, ``layercam`` — per
  box, from the same forward plus one backward per box (:mod:`pytest_camaudit.gradcams`);
* ``ablationcam`` — per box, channel ablations re-scored by the box head only
  (:mod:`pytest_camaudit.ablation`);
* ``drise`` — per box, black box: random masks, batched forwards (:mod:`pytest_camaudit.drise`).

Register a variant under an existing name to change its settings for a whole run, e.g. in a
``conftest.py``: ``register(drise_method(masks=4000))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .cams import CamMap, eigencam_component, eigengradcam, normalise, orient_toward_boxes
from .options import canonical_method_name

if TYPE_CHECKING:
    from .drise import DriseConfig
    from .engine import Detection, ImageAnalysis


@dataclass(frozen=True)
class CamMethod:
    """A registered CAM method.

    Attributes:
        name: registry name.
        per_box: True when the map explains one detection (box and label).
        needs_grad: True when it needs the forward's autograd graph.
        compute: ``(analysis, detection | None) -> CamMap`` of ``[H0, W0]`` original pixels.
        summary: one line for docs and ``--help``.
    """

    name: str
    per_box: bool
    needs_grad: bool
    compute: Callable[[ImageAnalysis, Detection | None], CamMap]
    summary: str


def _eigencam(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    proj, degenerate = eigencam_component(analysis.levels, analysis.geometry, analysis.grid)
    dets = analysis.detections
    signed = orient_toward_boxes(analysis.to_image(proj), [d.box for d in dets], [d.score for d in dets])
    return CamMap(normalise(signed), "eigencam", None, degenerate)  # normalise clips the negative side


def _eigengradcam(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    assert detection is not None
    from .gradcams import box_gradients

    grads = box_gradients(analysis, detection)
    products = type(grads)((k, grads[k] * analysis.levels[k]) for k in grads)
    grid_map, degenerate = eigengradcam(products, analysis.geometry, analysis.grid)
    return CamMap(normalise(analysis.to_image(grid_map)), "eigengradcam", detection.index, degenerate)


_REGISTRY: dict[str, CamMethod] = {}


def register(method: CamMethod) -> CamMethod:
    """Add ``method`` to the registry (a later registration of the same name replaces it)."""
    _REGISTRY[method.name] = method
    return method


register(CamMethod("eigencam", False, False, _eigencam, "class-agnostic: first principal component of the FPN activations"))
register(
    CamMethod(
        "eigengradcam",
        True,
        True,
        _eigengradcam,
        "per box: first principal component of gradient × activation of the box's score",
    )
)


def _gradient_method(name: str, summary: str) -> CamMethod:
    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .gradcams import gradient_cam

        assert detection is not None
        return gradient_cam(analysis, detection, name)

    return CamMethod(name, True, True, compute, summary)


register(_gradient_method("gradcam", "per box: channel-mean gradient × activation (Selvaraju et al. 2017)"))
register(_gradient_method("gradcam++", "per box: GradCAM with higher-order positive-gradient weights (Chattopadhay et al. 2018)"))
register(_gradient_method("hirescam", "per box: element-wise gradient × activation, faithful to the score's linearisation"))
register(_gradient_method("xgradcam", "per box: activation-normalised gradient weights (Fu et al. 2020)"))
register(_gradient_method("layercam", "per box: element-wise positive gradient × activation (Jiang et al. 2021)"))


def ablation_method(value: float | None = None, batch_size: int | None = None, name: str = "ablationcam") -> CamMethod:
    """An AblationCAM method (see :mod:`pytest_camaudit.ablation`); ``register()`` it to use it.

    ``value`` is what an ablated channel is set to (default 0; grad-cam's FasterRCNN layer uses -1000).
    """

    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .ablation import DEFAULT_ABLATION_VALUE, DEFAULT_BATCH, ablation_cam

        assert detection is not None
        cam = ablation_cam(
            analysis,
            detection,
            DEFAULT_ABLATION_VALUE if value is None else value,
            DEFAULT_BATCH if batch_size is None else batch_size,
        )
        return CamMap(cam.values, name, cam.target, cam.degenerate)

    return CamMethod(name, True, False, compute, "per box: score drop when each feature channel of the box's level is ablated (Desai & Ramaswamy 2020)")


def drise_method(config: DriseConfig | None = None, name: str = "drise", **settings: Any) -> CamMethod:
    """A D-RISE method (see :mod:`pytest_camaudit.drise`); ``register()`` it to use it.

    ``settings`` are :class:`~pytest_camaudit.drise.DriseConfig` fields, e.g. in a ``conftest.py``::

        from pytest_camaudit.methods import drise_method, register
        register(drise_method(masks=4000, cells=12))  # replaces the default "drise"
    """
    from .drise import DriseConfig

    cfg = config or DriseConfig(**settings)

    def compute(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
        from .drise import drise_cam

        assert detection is not None
        cam = drise_cam(analysis, detection, cfg)
        return CamMap(cam.values, name, cam.target, cam.degenerate)

    return CamMethod(name, True, False, compute, f"per box, black-box: {cfg.masks} random masks weighted by IoU × class score (Petsiuk et al. 2021)")


register(ablation_method())
register(drise_method())


def canonical_name(name: str) -> str:
    """``'EigenGrad-CAM'`` → ``'eigengradcam'`` (the same rule as ``--camaudit-method``)."""
    return canonical_method_name(name)


def method_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> CamMethod:
    """The registered method ``name``.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = canonical_name(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown CAM method {name!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]
