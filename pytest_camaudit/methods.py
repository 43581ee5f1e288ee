"""Registry of CAM methods the engine can compute from an :class:`~pytest_camaudit.engine.ImageAnalysis`.

A method declares whether it explains one detection (``per_box``) and whether it needs the
forward's autograd graph (``needs_grad``), and computes a :class:`~pytest_camaudit.cams.CamMap` on
the original image's pixel grid. Names are lower case without separators (``eigengradcam``);
:func:`canonical_name` folds ``EigenGrad-CAM`` and friends onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .cams import CamMap, eigencam, eigengradcam, normalise

if TYPE_CHECKING:
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
    grid_map, degenerate = eigencam(analysis.stack())
    return CamMap(normalise(analysis.to_image(grid_map)), "eigencam", None, degenerate)


def _eigengradcam(analysis: ImageAnalysis, detection: Detection | None) -> CamMap:
    assert detection is not None
    grads = analysis.gradients(detection)
    products = type(grads)((k, grads[k] * analysis.levels[k]) for k in grads)
    grid_map, degenerate = eigengradcam(analysis.stack(products))
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


def canonical_name(name: str) -> str:
    """``'EigenGrad-CAM'`` → ``'eigengradcam'``."""
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


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
