"""Per-detection gradient CAMs from the engine's single forward (+ one backward per box).

The gradient of one detection's score with respect to every captured level comes from
:meth:`~pytest_camaudit.engine.analysis.ImageAnalysis.gradients` (through the detection's own path
where its family knows it, else ``torch.autograd.grad`` on the level tensors the model consumed, so
dict-valued target layers work — the trap behind grad-cam issues #42 / #228 / #384), memoised per
box on the analysis and shared by every gradient method. On each
level the channel weighting is grad-cam's own arithmetic, called on that level's
``float32 [1, C, h, w]`` numpy arrays:

* GradCAM, GradCAM++ and XGradCAM: ``<Class>.get_cam_weights`` (``[1, C]`` channel weights),
  then ``Σ_c w_c A_c`` as in grad-cam's ``BaseCAM.get_cam_image``;
* HiResCAM and LayerCAM: ``<Class>.get_cam_image`` (element-wise ``g · A`` and ``relu(g) · A``).

Those functions do not use ``self``; they are called unbound with ``self=None`` so that no grad-cam
object (which would hook the model) is ever built.

What is done differently from grad-cam, and why:

* **Levels.** grad-cam sees an FPN only through ``fasterrcnn_reshape_transform``, which squeezes
  every level to the coarsest (``'pool'``) grid. Here each level's map is computed at its own
  resolution, brought onto the engine's common padded-canvas grid (as a density: area-averaged
  from finer levels, bilinear from coarser ones) and the levels' maps are *summed* before the
  ReLU — the score's first-order change is a sum over levels, so a sum is what explains it. (For
  torchvision detectors one box's gradient lands on one level anyway: the level ``RoIAlign``
  assigned it to, or the level of its anchor.)
* **Support.** A detection's score reads a level only where its gradient is non-zero: the
  ``RoIAlign`` footprint of its box (two stages) or its anchor's receptive field (one stage).
  grad-cam's channel-weighted maps (GradCAM, GradCAM++, XGradCAM) paint ``Σ_c w_c A_c`` over the
  whole level — wherever the weighted channels fire, on other objects too (on the shapes model
  such maps peaked inside their own box for only 20–36 % of boxes). Here they are kept where the
  score reads the level; a position the score never reads cannot explain it. The element-wise
  methods (HiResCAM, LayerCAM) are zero there already.
* **Target.** The explained quantity is the detection's own output score in the same forward, not
  grad-cam's ``FasterRCNNBoxScoreTarget`` (IoU + score of the best-matching box after a re-run).
* **Geometry.** The map is mapped to original pixels through the resize and padding exactly
  (:mod:`pytest_camaudit.engine.alignment`), not stretched over the padded canvas.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..datatypes import CamMap, Detection
from .maps import normalise

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis

LevelCam = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(activations float32 [1, C, h, w], gradients float32 [1, C, h, w]) → float32 [h, w]`` pre-ReLU."""


def _weighted(weights_fn: Callable[..., np.ndarray]) -> LevelCam:
    def level_cam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights_fn(None, None, None, None, acts, grads), dtype=np.float32)  # [1, C]
        return (weights[:, :, None, None] * acts).sum(axis=1)[0]

    return level_cam


def _elementwise(image_fn: Callable[..., np.ndarray]) -> LevelCam:
    def level_cam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return np.asarray(image_fn(None, None, None, None, acts, grads, False), dtype=np.float32)[0]

    return level_cam


def level_cams() -> dict[str, LevelCam]:
    """Registry name → per-level map, each built on grad-cam's own weighting (imported lazily)."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM

    return {
        "gradcam": _weighted(GradCAM.get_cam_weights),
        "gradcam++": _weighted(GradCAMPlusPlus.get_cam_weights),
        "xgradcam": _weighted(XGradCAM.get_cam_weights),
        "hirescam": _elementwise(HiResCAM.get_cam_image),
        "layercam": _elementwise(LayerCAM.get_cam_image),
    }


def gradient_cam(analysis: ImageAnalysis, detection: Detection, name: str) -> CamMap:
    """The per-detection map of gradient method ``name`` on ``[H0, W0]`` original pixels.

    Args:
        analysis: the image's analysis; its forward graph is used (one backward).
        detection: the detection to explain.
        name: one of :func:`level_cams`' names.

    Returns:
        A :class:`CamMap` (max 1; ``degenerate`` when the score's gradient is zero on every level).
    """
    fn = level_cams()[name]
    grads = analysis.gradients(detection)
    maps: OrderedDict[str, torch.Tensor] = OrderedDict()
    for level, g in grads.items():
        a = analysis.levels[level]
        cam = torch.from_numpy(np.ascontiguousarray(fn(a[None].float().cpu().numpy(), g[None].float().cpu().numpy()), dtype=np.float32))
        support = (g.abs().sum(dim=0) > 0).cpu()
        maps[level] = (cam * support)[None].to(a.device)
    degenerate = all(float(g.abs().max()) == 0.0 for g in grads.values())
    grid_map = analysis.stack(maps).sum(dim=0).clamp_min(0)
    return CamMap(normalise(analysis.to_image(grid_map)), name, detection.index, degenerate)
