"""Attention relevance (Chefer, Gur & Wolf, ICCV 2021) as a per-box CAM for transformer detectors.

The relevance of each image token for one detection — gradient-weighted attention rolled out
through the encoder's self-attention and the decoder's self- and cross-attention — is computed by
the detector's family (:meth:`~pytest_camaudit.detectors.family.Family.attention_relevance`: the
DETR family, :mod:`pytest_camaudit.detectors.detr`), on the cells of its target layer. This module
only brings it onto the image's pixels like every other map: onto the analysis's common grid, then
through the resize and padding (:mod:`pytest_camaudit.engine.alignment`), clipped and scaled to 1.

A family without attention maps over image tokens raises a
:class:`~pytest_camaudit.errors.DetectorRuntimeError` that names the methods to use instead.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

from ..datatypes import CamMap, Detection
from ..errors import DetectorRuntimeError
from .maps import normalise

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis


def relevance(analysis: ImageAnalysis, detection: Detection) -> tuple[str, torch.Tensor]:
    """``(level name, FloatTensor[h, w])``: the family's relevance of ``detection`` (memoised per box).

    Raises:
        DetectorRuntimeError: the family has no attention relevance, or the model raised computing it.
    """
    detector = analysis.engine.detector

    def compute() -> tuple[str, torch.Tensor]:
        try:
            return detector.family.attention_relevance(detector, analysis.capture, detection)
        except DetectorRuntimeError:
            raise
        except Exception as exc:
            raise DetectorRuntimeError(
                f"detector {detector.name} raised {type(exc).__name__} computing the attention relevance of "
                f"{detection.describe()}: {exc}"
            ) from exc

    return analysis.remember(("attention", detection.index), compute)


def attention_cam(analysis: ImageAnalysis, detection: Detection) -> CamMap:
    """The ``attention`` map of ``detection`` on ``[H0, W0]`` original pixels (max 1; degenerate when all zero)."""
    level, cells = relevance(analysis, detection)
    grid_map = analysis.stack(OrderedDict([(level, cells[None].float())]))[0]
    degenerate = not bool(torch.isfinite(cells).all()) or float(cells.clamp_min(0).max()) == 0.0
    return CamMap(normalise(analysis.to_image(grid_map)), "attention", detection.index, degenerate)
