"""What the plugin knows about each detector architecture, and the small protocol for your own.

An :class:`Adapter` tells the engine three things about a family of detectors:

1. **Where the features are** — ``target_layer(model)``: the module whose output the CAMs explain
   (``model.backbone`` for every torchvision detector: the FPN for R-CNN / RetinaNet / FCOS, the
   multi-scale feature extractor for SSD / SSDlite), and ``levels(output)``: that output as an
   ordered ``name → FloatTensor[B, C, h, w]``.
2. **What the classes are called** — ``class_names(builder, model)``: from the torchvision
   weights' metadata (COCO's 91 names; ``keypointrcnn_resnet50_fpn``: ``no person``, ``person``).
3. **How one detection's score is computed from one level** — ``local_scorer(model, analysis,
   detection)`` returns a :class:`LocalScorer`: a small window of one feature level and a function
   that re-scores the detection from (perturbed copies of) that window. This is what makes
   AblationCAM cheap: the backbone never re-runs, and neither does anything the detection's score
   does not depend on.

   * Two-stage (Faster / Mask / Keypoint R-CNN): the window is the ``RoIAlign`` of the
     detection's own box on the FPN level ``MultiScaleRoIAlign`` assigns it to,
     ``FloatTensor[C, 7, 7]``; the function is ``box_head`` → ``box_predictor`` → softmax at the
     detection's label. ``RoIAlign`` is per channel and interpolates a constant to that constant,
     so ablating pooled channel ``c`` *is* ablating channel ``c`` of the level, for this box.
   * One-stage (RetinaNet, FCOS, SSD, SSDlite): the anchor (level, cell, anchor) that produced the
     detection is found by re-scoring every level once; the window is the level cropped to the
     head's receptive field around that cell (the whole level when the head normalises over space,
     i.e. GroupNorm in RetinaNet v2 and FCOS); the function runs the classification branch on it and
     reads the score at that anchor exactly as ``postprocess_detections`` computes it
     (sigmoid; ``sqrt(sigmoid(cls) · sigmoid(centerness))`` for FCOS; softmax for SSD).

Your own model — from ``--camaudit-model=package.module:callable`` or a ``camaudit_detector``
fixture in ``conftest.py`` returning ``Detector.wrap(model, class_names=[...])`` — needs only:

* ``model(list of FloatTensor[3, H, W] in [0, 1])`` in eval mode returns, per image, a dict with
  ``boxes`` ``FloatTensor[N, 4]`` ``[x1, y1, x2, y2]`` in input pixels, ``labels``
  ``Int64Tensor[N]`` and ``scores`` ``FloatTensor[N]`` (torchvision's convention);
* a target layer (``model.backbone`` by default, or ``Detector.wrap(target_layer=...)``) returning
  ``Tensor[B, C, h, w]`` or a dict / list of them in the same forward (EigenCAM needs nothing
  more; D-RISE needs not even that);
* for the gradient methods, ``scores`` that depend differentiably on that output;
* resize / padding, if any, done in ``model.transform`` (a ``GeneralizedRCNNTransform``), so maps
  land on the right pixels;
* for AblationCAM, either a torchvision-shaped model (``roi_heads`` with ``box_roi_pool`` /
  ``box_head`` / ``box_predictor``, or a RetinaNet / FCOS / SSD ``head``), or an adapter you add
  with :func:`register_adapter` whose ``local_scorer`` builds a :class:`LocalScorer`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DetectorRuntimeError

if TYPE_CHECKING:
    from .engine import Detection, ImageAnalysis

LevelsFn = Callable[[Any], "OrderedDict[str, torch.Tensor]"]


@dataclass
class LocalScorer:
    """One detection's score as a function of a window of one feature level.

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


ScorerFn = Callable[[nn.Module, "ImageAnalysis", "Detection"], LocalScorer]


def default_levels(output: Any) -> OrderedDict[str, torch.Tensor]:
    """Target-layer output → ordered ``name → Tensor[B, C, h, w]`` (an FPN dict, or one tensor)."""
    if isinstance(output, torch.Tensor):
        return OrderedDict([("0", output)])
    if isinstance(output, dict):
        return OrderedDict((str(k), v) for k, v in output.items() if isinstance(v, torch.Tensor) and v.ndim == 4)
    if isinstance(output, (list, tuple)):
        return OrderedDict((str(i), v) for i, v in enumerate(output) if isinstance(v, torch.Tensor) and v.ndim == 4)
    raise TypeError(f"the target layer returned a {type(output).__name__}; expected a tensor [B, C, h, w] or a dict of them")


@dataclass(frozen=True)
class Adapter:
    """Per-architecture knowledge (see the module docstring).

    Attributes:
        name: short name shown in reports (``"rcnn"``, ``"retinanet"``…).
        matches: ``model → bool``; the first registered adapter that matches is used.
        target_layer: ``model → nn.Module`` whose output feeds the CAMs.
        levels: target-layer output → ``name → Tensor[B, C, h, w]``.
        local_scorer: builds a :class:`LocalScorer` (``None``: AblationCAM is unavailable).
    """

    name: str
    matches: Callable[[nn.Module], bool]
    target_layer: Callable[[nn.Module], nn.Module] = lambda m: m.backbone
    levels: LevelsFn = default_levels
    local_scorer: ScorerFn | None = None


# -- two-stage: the box head on the detection's fixed box --------------------------------------


def _is_rcnn(model: nn.Module) -> bool:
    rh = getattr(model, "roi_heads", None)
    return all(hasattr(rh, a) for a in ("box_roi_pool", "box_head", "box_predictor")) and hasattr(model, "backbone")


def _batched(levels: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, v[None]) for k, v in levels.items())


def detection_box_in_canvas(analysis: ImageAnalysis, detection: Detection) -> torch.Tensor:
    """The detection's box in the resized image the backbone saw: ``FloatTensor[1, 4]``."""
    (h0, w0), (hr, wr) = analysis.geometry.original, analysis.geometry.resized
    x1, y1, x2, y2 = detection.box
    sx, sy = wr / w0, hr / h0
    return torch.tensor([[x1 * sx, y1 * sy, x2 * sx, y2 * sy]], dtype=torch.float32)


def rcnn_local_scorer(model: nn.Module, analysis: ImageAnalysis, detection: Detection) -> LocalScorer:
    """``RoIAlign`` of the detection's box on its level; score = softmax of the box head at its label."""
    rh = model.roi_heads
    pool = rh.box_roi_pool
    feats = _batched(analysis.levels)
    device = next(iter(feats.values())).device
    box = detection_box_in_canvas(analysis, detection).to(device)
    sizes = [tuple(int(v) for v in analysis.geometry.resized)]
    names = [n for n in feats if n in getattr(pool, "featmap_names", list(feats))]
    if not names:
        raise DetectorRuntimeError(
            f"the box RoI pooler reads levels {getattr(pool, 'featmap_names', '?')} but the target layer gave "
            f"{list(feats)}; AblationCAM needs the target layer to be the FPN that feeds roi_heads"
        )
    # the pooled window, the level it was read from and the cells it reads: d window / d level ≠ 0
    probe = OrderedDict((n, feats[n].detach().requires_grad_(True)) for n in names)
    with torch.enable_grad():
        pooled = pool(probe, [box], sizes)[0]
        grads = torch.autograd.grad(pooled.sum(), list(probe.values()), allow_unused=True)
    reads = [(n, g[0].abs().sum(dim=0)) for n, g in zip(names, grads) if g is not None and float(g.abs().max()) > 0]
    if len(reads) != 1:
        raise DetectorRuntimeError(
            f"the box RoI pooler of {type(model).__name__} read {len(reads)} levels for one box; AblationCAM's "
            "fixed-box shortcut needs MultiScaleRoIAlign's one level per box"
        )
    level, support = reads[0][0], reads[0][1] > 0
    window = pooled.detach()
    label = detection.label

    def score(windows: torch.Tensor) -> torch.Tensor:
        logits, _ = rh.box_predictor(rh.box_head(windows))
        return F.softmax(logits, dim=-1)[:, label]

    with torch.no_grad():
        base = float(score(window[None])[0])
    return LocalScorer(level, window, score, support, base)


# -- one-stage: the classification branch at the detection's anchor ----------------------------


def _has_spatial_norm(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)) for m in module.modules())


def _conv3_depth(module: nn.Module) -> int:
    """Receptive radius in cells of a stack of stride-1 convolutions (one per 3×3)."""
    r = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if m.stride != (1, 1) or m.dilation != (1, 1):
                return -1
            r += (m.kernel_size[0] - 1) // 2
    return r


@dataclass(frozen=True)
class _HeadSpec:
    """How one one-stage head scores the cells of one level.

    ``scores(model, level_index, x[B, C, h, w]) → FloatTensor[B, h, w, A, K]`` as
    ``postprocess_detections`` computes them; ``radius(model)`` the receptive radius of that
    computation in cells, ``None`` when it normalises over space (the whole level is needed);
    ``reach(model)`` the radius of its convolutions alone (the cells that carry its evidence).
    """

    scores: Callable[[nn.Module, int, torch.Tensor], torch.Tensor]
    radius: Callable[[nn.Module], int | None]
    reach: Callable[[nn.Module], int]


def _to_cells(raw: torch.Tensor, k: int) -> torch.Tensor:
    b, _, h, w = raw.shape
    return raw.view(b, -1, k, h, w).permute(0, 3, 4, 1, 2)  # [B, h, w, A, K]


def _retinanet_scores(model: nn.Module, _i: int, x: torch.Tensor) -> torch.Tensor:
    ch = model.head.classification_head
    return torch.sigmoid(_to_cells(ch.cls_logits(ch.conv(x)), ch.num_classes))


def _fcos_scores(model: nn.Module, _i: int, x: torch.Tensor) -> torch.Tensor:
    ch, rg = model.head.classification_head, model.head.regression_head
    cls = _to_cells(ch.cls_logits(ch.conv(x)), ch.num_classes)
    ctr = _to_cells(rg.bbox_ctrness(rg.conv(x)), 1)
    return torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr))


def _ssd_scores(model: nn.Module, i: int, x: torch.Tensor) -> torch.Tensor:
    ch = model.head.classification_head
    return F.softmax(_to_cells(ch.module_list[i](x), ch.num_columns), dim=-1)


def _radius(*paths: str) -> Callable[[nn.Module], int | None]:
    def radius(model: nn.Module) -> int | None:
        mods = [model.get_submodule(p) for p in paths]
        if any(_has_spatial_norm(m) for m in mods):
            return None
        depths = [_conv3_depth(m) for m in mods]
        return None if min(depths) < 0 else max(depths)

    return radius


def _reach(*paths: str) -> Callable[[nn.Module], int]:
    return lambda model: max(0, max(_conv3_depth(model.get_submodule(p)) for p in paths))


def _ssd_reach(model: nn.Module) -> int:
    return max(0, max(_conv3_depth(m) for m in model.head.classification_head.module_list))


def _ssd_radius(model: nn.Module) -> int | None:
    mods = list(model.head.classification_head.module_list)
    if any(_has_spatial_norm(m) for m in mods) or min(_conv3_depth(m) for m in mods) < 0:
        return None
    return max(_conv3_depth(m) for m in mods)


_RETINANET = _HeadSpec(_retinanet_scores, _radius("head.classification_head"), _reach("head.classification_head"))
_FCOS = _HeadSpec(
    _fcos_scores, _radius("head.classification_head", "head.regression_head"), _reach("head.classification_head", "head.regression_head")
)
_SSD = _HeadSpec(_ssd_scores, _ssd_radius, _ssd_reach)


def anchor_of(model: nn.Module, spec: _HeadSpec, analysis: ImageAnalysis, detection: Detection) -> tuple[str, int, int, int, int]:
    """``(level name, level index, y, x, a)`` of the cell and anchor that produced ``detection``.

    Every level is scored once; the candidates are the anchors whose score for the detection's
    label equals the detection's score (to 1e-4), and among them the one whose cell centre is
    nearest the box centre.

    Raises:
        DetectorRuntimeError: no anchor reproduces the score (the head is not the one scored).
    """
    box = detection_box_in_canvas(analysis, detection)[0]
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    hp, wp = analysis.geometry.padded
    best: tuple[float, tuple[str, int, int, int, int]] | None = None
    with torch.no_grad():
        for i, (name, lvl) in enumerate(analysis.levels.items()):
            s = spec.scores(model, i, lvl[None])[0, ..., detection.label]  # [h, w, A]
            hits = torch.nonzero((s - detection.score).abs() <= 1e-4 * max(1.0, detection.score))
            h, w = lvl.shape[-2:]
            for y, x, a in hits.tolist():
                d = ((x + 0.5) * wp / w - cx) ** 2 + ((y + 0.5) * hp / h - cy) ** 2
                if best is None or d < best[0]:
                    best = (d, (name, i, y, x, a))
    if best is None:
        raise DetectorRuntimeError(
            f"no anchor of {type(model).__name__}'s head reproduces the score {detection.score:.6f} of "
            f"{detection.describe()}; AblationCAM cannot re-score it (was the head or its postprocess changed?)"
        )
    return best[1]


def _one_stage_scorer(spec: _HeadSpec) -> ScorerFn:
    def local_scorer(model: nn.Module, analysis: ImageAnalysis, detection: Detection) -> LocalScorer:
        name, i, y, x, a = anchor_of(model, spec, analysis, detection)
        lvl = analysis.levels[name]
        h, w = lvl.shape[-2:]
        r = spec.radius(model)
        if r is None:
            y0, y1, x0, x1 = 0, h, 0, w
        else:
            y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        window = lvl[:, y0:y1, x0:x1]
        reach = spec.reach(model)
        support = torch.zeros(h, w, dtype=torch.bool, device=lvl.device)
        support[max(0, y - reach) : y + reach + 1, max(0, x - reach) : x + reach + 1] = True
        yy, xx, label = y - y0, x - x0, detection.label

        def score(windows: torch.Tensor) -> torch.Tensor:
            return spec.scores(model, i, windows)[:, yy, xx, a, label]

        with torch.no_grad():
            base = float(score(window[None])[0])
        if abs(base - detection.score) > 1e-3 * max(1.0, detection.score):
            raise DetectorRuntimeError(
                f"re-scoring {detection.describe()} on a {tuple(window.shape[-2:])} window of level {name} gave "
                f"{base:.6f}; the head's receptive field is wider than its convolutions say"
            )
        return LocalScorer(name, window, score, support, base)

    return local_scorer


def _class_is(*names: str) -> Callable[[nn.Module], bool]:
    return lambda m: any(c.__name__ in names for c in type(m).__mro__)


_ADAPTERS: list[Adapter] = [
    Adapter("rcnn", _is_rcnn, local_scorer=rcnn_local_scorer),
    Adapter("retinanet", _class_is("RetinaNet"), local_scorer=_one_stage_scorer(_RETINANET)),
    Adapter("fcos", _class_is("FCOS"), local_scorer=_one_stage_scorer(_FCOS)),
    Adapter("ssd", _class_is("SSD"), local_scorer=_one_stage_scorer(_SSD)),
]


def register_adapter(adapter: Adapter) -> Adapter:
    """Put ``adapter`` first in the lookup (so it wins over the built-in ones for its models)."""
    _ADAPTERS.insert(0, adapter)
    return adapter


def adapter_for(model: nn.Module) -> Adapter | None:
    """The first registered adapter whose ``matches(model)`` is true, else ``None``."""
    for adapter in _ADAPTERS:
        if adapter.matches(model):
            return adapter
    return None


def num_classes(model: nn.Module) -> int | None:
    """Number of classes (background included) a torchvision-shaped detector predicts."""
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    if predictor is not None and hasattr(predictor, "cls_score"):
        return int(predictor.cls_score.out_features)
    head = getattr(getattr(model, "head", None), "classification_head", None)
    for attr in ("num_classes", "num_columns"):
        if head is not None and hasattr(head, attr):
            return int(getattr(head, attr))
    return None


def torchvision_class_names(builder: str, model: nn.Module) -> list[str] | None:
    """Class names of ``builder`` from its weights' metadata (offline), when the counts agree.

    ``keypointrcnn_resnet50_fpn`` → ``["no person", "person"]``; the others → COCO's 91.
    ``None`` when the model predicts another number of classes (a fine-tuned head).
    """
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(builder)
    except (ValueError, KeyError):
        return None
    categories = list(next(iter(weights)).meta.get("categories", []))
    n = num_classes(model)
    if categories and (n is None or n == len(categories)):
        return categories
    return None
