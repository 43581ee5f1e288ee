"""AblationCAM (Desai & Ramaswamy 2020) for one detection, without re-running the backbone.

grad-cam's ``AblationCAM`` + ``AblationLayerFasterRCNN`` replaces the FPN by its cached output and,
for each of the 5 × 256 channels, re-runs the RPN and the RoI heads on a copy of all five levels
with that channel set to -1000, then scores the best-matching box (``FasterRCNNBoxScoreTarget``).
A box's score, however, reads one level through a small window: the ``RoIAlign`` of its box (two
stages) or the head's receptive field around its anchor (one stage). The detector's family
(:meth:`~pytest_camaudit.detectors.base.Family.local_scorer`) hands that window and the function from it to the score, so
here each ablation costs one row of a batched box-head (or head-on-a-crop) call:

* weights ``w_c = (s - s_c) / s`` — grad-cam's formula — where ``s`` is the detection re-scored
  on the intact window and ``s_c`` with channel ``c`` replaced by ``value`` everywhere;
* map ``relu(Σ_c w_c |A_c|)`` on the level ``A`` the window was cut from, on that level's own
  grid, then mapped to original pixels exactly.

Cost per box: ``C`` rows of the box head (two stages: ``C = 256`` rows of a 7×7 window, a few
hundred milliseconds for R50 on one CPU thread) or of the classification branch on the anchor's
window (RetinaNet v1, SSD, SSDlite: a few cells). RetinaNet v2 and FCOS normalise their heads with
GroupNorm over the whole level, so there the window is the whole level: ``C`` head runs on one
level, which at 800 px is minutes per box on a CPU (fine on a GPU, or at test-suite sizes).

Where it differs from grad-cam, and why:

* The box (or anchor) is held fixed. grad-cam's re-run lets the RPN propose other boxes on the
  ablated features, so channels of levels the box does not read get weights too (through
  proposal changes) and the score is the best IoU-matched box's. Those weights measure "does the
  detector find *a* box here any more", not "why did *this* box get *this* score".
* Ablation value: ``0`` by default (the paper's "switch the feature off"; FPN / SSD features are
  centred around 0), ``-1000`` as in ``AblationLayerFasterRCNN`` on request. -1000 is so far
  outside the features' range that almost every channel of the box's level looks vital, which
  pulls the map toward the level's mean activation.
* The map weighs ``|A_c|`` (as grad-cam's ``fasterrcnn_reshape_transform`` does): FPN features are
  signed, and ablating to 0 changes position ``(y, x)`` of channel ``c`` by ``|A_c(y, x)|``
  whatever its sign. A channel whose ablation *raises* the score (``w_c < 0``) pulls the map down
  where it is active.
* The map is kept on the cells the window reads (``LocalScorer.support``): for a fixed box, a
  position outside its ``RoIAlign`` footprint (or its anchor's receptive field) cannot change its
  score, so it cannot explain it. grad-cam paints ``Σ_c w_c |A_c|`` over the whole image, i.e.
  wherever the important channels fire — on other objects too.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

from ..datatypes import CamMap, Detection
from ..detectors.base import LocalScorer
from ..errors import DetectorRuntimeError
from .maps import normalise

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis

DEFAULT_ABLATION_VALUE = 0.0
"""What an ablated channel is set to (see the module docstring)."""

DEFAULT_BATCH = 64
"""Ablated windows scored per call."""


def ablation_scores(scorer: LocalScorer, value: float = DEFAULT_ABLATION_VALUE, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """The detection's score with each channel of the window set to ``value``.

    Args:
        scorer: the detection's :class:`~pytest_camaudit.detectors.base.LocalScorer`.
        value: the ablation value.
        batch_size: windows per call of ``scorer.score``.

    Returns:
        ``FloatTensor[C]``, entry ``c`` the score with channel ``c`` ablated.
    """
    window = scorer.window
    c = window.shape[0]
    out = []
    with torch.no_grad():
        for start in range(0, c, batch_size):
            idx = torch.arange(start, min(c, start + batch_size), device=window.device)
            batch = window[None].repeat(len(idx), 1, 1, 1)
            batch[torch.arange(len(idx), device=window.device), idx] = value
            out.append(scorer.score(batch).float())
    return torch.cat(out)


def ablation_weights(scorer: LocalScorer, value: float = DEFAULT_ABLATION_VALUE, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """grad-cam's AblationCAM channel weights ``(s - s_c) / s`` for the scorer's level: ``FloatTensor[C]``."""
    scores = ablation_scores(scorer, value, batch_size)
    return (scorer.base - scores) / max(abs(scorer.base), 1e-12)


def local_scorer(analysis: ImageAnalysis, detection: Detection) -> LocalScorer:
    """The family's :class:`~pytest_camaudit.detectors.base.LocalScorer` for ``detection``.

    Raises:
        DetectorRuntimeError: the family cannot re-score one box from a window of its features.
    """
    detector = analysis.detector
    return detector.family.local_scorer(detector, analysis.capture, detection)


def ablation_cam(
    analysis: ImageAnalysis,
    detection: Detection,
    value: float = DEFAULT_ABLATION_VALUE,
    batch_size: int = DEFAULT_BATCH,
) -> CamMap:
    """AblationCAM of ``detection`` on ``[H0, W0]`` original pixels (see the module docstring)."""
    try:
        scorer = local_scorer(analysis, detection)
        weights = ablation_weights(scorer, value, batch_size).to(analysis.levels[scorer.level].device)
    except DetectorRuntimeError:
        raise
    except Exception as exc:
        raise DetectorRuntimeError(
            f"detector {analysis.detector.name} raised {type(exc).__name__} while re-scoring "
            f"{detection.describe()} on ablated features: {exc}"
        ) from exc
    acts = analysis.levels[scorer.level].float().abs()
    level_map = torch.einsum("c,chw->hw", weights, acts) * scorer.support.to(acts.device)
    grid_map = analysis.stack(OrderedDict([(scorer.level, level_map[None])]))[0].clamp_min(0)
    degenerate = float(weights.abs().max()) == 0.0
    return CamMap(normalise(analysis.to_image(grid_map)), "ablationcam", detection.index, degenerate)
