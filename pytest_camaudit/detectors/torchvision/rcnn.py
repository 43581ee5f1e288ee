"""Two-stage detectors: torchvision's Faster / Mask / Keypoint R-CNN (and the embedded ``shapes`` models).

The target layer is the FPN (``model.backbone``); its ``OrderedDict`` output is the levels. A
detection's score is ``softmax(box_predictor(box_head(RoIAlign(level, proposal))))[label]``, where
``RoIAlign`` reads the one FPN level ``MultiScaleRoIAlign`` assigns the proposal to. torchvision's
RPN detaches its proposals, so the score depends on the levels through that one ``RoIAlign`` only.

**Gradients through the box's own proposal** (:meth:`RcnnFamily.box_gradients`). The capturing
forward runs without autograd; hooks keep the proposals, the box predictor's outputs and the
detections in canvas pixels, and right after the forward each detection is traced back to the
proposal it was regressed from (:func:`match_proposals`: the same decode, clip and softmax as
``postprocess_detections``). Only the ``[N, 4]`` proposals of the detections are kept. A box's
gradient is then ``RoIAlign`` of that one proposal on a detached leaf of its level, the box head,
and one small backward — not a backward of ``RoIAlign`` over every proposal of the image.

For AblationCAM (:meth:`RcnnFamily.local_scorer`) the window is the ``RoIAlign`` of the detection's
own box, ``FloatTensor[C, 7, 7]``, and the function is the box head at its label. ``RoIAlign`` is per
channel and interpolates a constant to that constant, so ablating pooled channel ``c`` *is*
ablating channel ``c`` of the level, for this box.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import MultiScaleRoIAlign, clip_boxes_to_image, roi_align

from ...datatypes import Detection
from ...errors import DetectorRuntimeError
from ..family import Capture, DetectorView, HookPoint, LocalScorer
from ..handles import Handles
from .common import TorchvisionFamily

HANDLES = Handles(
    name="rcnn",
    names=("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
           "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn"),
    loader="pytest_camaudit.detectors.torchvision.common:load",
    describe="a torchvision builder (e.g. fasterrcnn_resnet50_fpn)",
)
"""Any model shaped like torchvision's R-CNNs (:func:`is_rcnn`, no class names); the torchvision builders by name."""


def is_rcnn(model: nn.Module) -> bool:
    """A torchvision-shaped two-stage detector: ``backbone`` and ``roi_heads`` with a box pooler, head and predictor."""
    rh = getattr(model, "roi_heads", None)
    return all(hasattr(rh, a) for a in ("box_roi_pool", "box_head", "box_predictor")) and hasattr(model, "backbone")


def batched(levels: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """``name → [C, h, w]`` as ``name → [1, C, h, w]``."""
    return OrderedDict((k, v[None]) for k, v in levels.items())


def _pooled_level(model: Any, capture: Capture, box: torch.Tensor) -> tuple[str, torch.Tensor, torch.Tensor]:
    """``(level name, pooled window FloatTensor[C, 7, 7], support BoolTensor[h, w])`` of ``box`` (``[1, 4]`` canvas px)."""
    pool: Any = model.roi_heads.box_roi_pool
    feats = batched(capture.levels)
    sizes = [tuple(int(v) for v in capture.geometry.resized)]
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
    reads = [(n, g[0].abs().sum(dim=0)) for n, g in zip(names, grads, strict=True) if g is not None and float(g.abs().max()) > 0]
    if len(reads) != 1:
        raise DetectorRuntimeError(
            f"the box RoI pooler of {type(model).__name__} read {len(reads)} levels for one box; AblationCAM's "
            "fixed-box shortcut needs MultiScaleRoIAlign's one level per box"
        )
    return reads[0][0], pooled.detach(), reads[0][1] > 0


def match_proposals(rh: Any, captured: dict[str, Any]) -> torch.Tensor:
    """``FloatTensor[N, 4]``: the proposal (canvas px) each of the image's ``N`` detections was regressed from.

    A detection ``(box, score, label)`` came from proposal ``p`` when ``softmax(logits[p])[label]``
    equals its score and ``clip(decode(regression[p], p))[label]`` its box — bit for bit, else the
    nearest within 1e-5 (relative score) and 1e-3 px. Identical proposals (the only way to tie)
    have identical gradients; the first is taken.

    Raises:
        DetectorRuntimeError: a detection matches no proposal (``postprocess_detections`` was changed).
    """
    props = captured["proposals"][1][0].detach()
    logits, regression = (t.detach() for t in captured["predictor"])
    boxes, scores, labels = captured["roi_heads"]
    size = tuple(int(v) for v in captured["proposals"][2][0])
    if len(labels) == 0:
        return props.new_zeros((0, 4))
    labels = labels.long()
    decoded = clip_boxes_to_image(rh.box_coder.decode(regression[: len(props)], [props]), size)[:, labels]  # [P, N, 4]
    probs = F.softmax(logits[: len(props)], -1)[:, labels]  # [P, N]
    ds = (probs - scores[None]).abs() / scores.abs().clamp_min(1e-12)[None]
    db = (decoded - boxes[None]).abs().amax(-1)
    cost = torch.where((ds <= 1e-5) & (db <= 1e-3), ds + db, torch.full_like(ds, float("inf")))
    best = cost.argmin(dim=0)
    if not bool(torch.isfinite(cost.min(dim=0).values).all()):
        d = int(torch.nonzero(~torch.isfinite(cost.min(dim=0).values))[0])
        raise DetectorRuntimeError(
            f"detection {d} (label {int(labels[d])}, score {float(scores[d]):.6f}) matches no proposal of the box head; "
            "was roi_heads.postprocess_detections changed? Use a detector whose scores are the box predictor's softmax"
        )
    return props[best].clone()


def _level_pooler(pool: Any) -> bool:
    """Whether ``pool`` is torchvision's ``MultiScaleRoIAlign``, set up (its level mapper built by a forward)."""
    return isinstance(pool, MultiScaleRoIAlign) and pool.scales is not None and pool.map_levels is not None


def proposal_levels(model: Any, levels: OrderedDict[str, torch.Tensor], proposals: torch.Tensor) -> list[int] | None:
    """The pooler level index of each of ``proposals`` (``FloatTensor[N, 4]``), by the pooler's own
    level mapper, all at once; None where the pooler is not a set-up ``MultiScaleRoIAlign``."""
    pool = model.roi_heads.box_roi_pool
    if not _level_pooler(pool):
        return None
    if len([n for n in levels if n in pool.featmap_names]) <= 1 or len(proposals) == 0:
        return [0] * len(proposals)
    return [int(k) for k in pool.map_levels([proposals]).tolist()]


def proposal_gradients(model: Any, levels: OrderedDict[str, torch.Tensor], proposal: torch.Tensor, label: int,
                       image_size: tuple[int, int], level: int | None = None) -> OrderedDict[str, torch.Tensor]:
    """``d softmax(box_head(RoIAlign(level, proposal)))[label] / d level`` for every level (zeros where not read).

    With torchvision's ``MultiScaleRoIAlign`` only the proposal's own level is a leaf (found by the
    pooler's own level mapper, or given as ``level``: :func:`proposal_levels`); another pooler runs
    as a whole on leaves of every level.
    """
    rh = model.roi_heads
    pool = rh.box_roi_pool
    box = proposal[None]
    with torch.enable_grad():
        if _level_pooler(pool):
            names = [n for n in levels if n in pool.featmap_names]
            k = level if level is not None else int(pool.map_levels([box])[0]) if len(names) > 1 else 0
            leaves = {names[k]: levels[names[k]][None].detach().requires_grad_(True)}
            rois = torch.cat([box.new_zeros(1, 1), box], dim=1)
            pooled = roi_align(leaves[names[k]], rois, output_size=pool.output_size, spatial_scale=pool.scales[k],
                               sampling_ratio=pool.sampling_ratio)
        else:
            leaves = {n: v[None].detach().requires_grad_(True) for n, v in levels.items()}
            pooled = pool(leaves, [box], [image_size])
        logits, _ = rh.box_predictor(rh.box_head(pooled))
        grads = torch.autograd.grad(F.softmax(logits, -1)[0, label], list(leaves.values()), allow_unused=True)
    found = {name: g[0] for name, g in zip(leaves, grads, strict=True) if g is not None}
    return OrderedDict((name, found[name] if name in found else torch.zeros_like(v)) for name, v in levels.items())


def _canvas_detections(out: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first image's ``roi_heads`` result before ``transform.postprocess`` rescales it (it replaces the dict's tensors)."""
    result = out[0] if isinstance(out, tuple) else out
    r = result[0]
    return r["boxes"].detach(), r["scores"].detach(), r["labels"].detach()


@dataclass(frozen=True, eq=False)
class RcnnFamily(TorchvisionFamily):
    """Faster / Mask / Keypoint R-CNN: the box head on the detection's proposal (or, for AblationCAM, its box)."""

    name = "rcnn"
    box_local_gradients = True
    handles = HANDLES

    def matches(self, model: nn.Module) -> bool:
        return is_rcnn(model)

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        rh: Any = detector.model.roi_heads
        return {
            **super().hook_points(detector),
            "proposals": HookPoint(rh.box_roi_pool, "input"),
            "predictor": HookPoint(rh.box_predictor),
            "roi_heads": HookPoint(rh, take=_canvas_detections),
        }

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        # the box head's inputs and outputs (a few kB), matched to detections on the first per-box
        # gradient: the match costs ~2 % of a small model's forward, which EigenCAM alone never needs
        if not all(k in captured for k in ("proposals", "predictor", "roi_heads")):
            return {}
        return {"head": {k: captured[k] for k in ("proposals", "predictor", "roi_heads")}}

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        if "proposals" not in capture.memo and "head" in capture.memo:  # once per image: each detection's proposal and level
            capture.memo["proposals"] = match_proposals(detector.model.roi_heads, capture.memo.pop("head"))
            capture.memo["proposal_levels"] = proposal_levels(detector.model, capture.levels, capture.memo["proposals"])
        proposals = capture.memo.get("proposals")
        if proposals is None or detection.index >= len(proposals):
            return None
        size = (int(capture.geometry.resized[0]), int(capture.geometry.resized[1]))
        levels = capture.memo.get("proposal_levels")
        return proposal_gradients(detector.model, capture.levels, proposals[detection.index], detection.label, size,
                                  level=levels[detection.index] if levels is not None else None)

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        """``RoIAlign`` of the detection's box on its level; score = softmax of the box head at its label."""
        rh: Any = detector.model.roi_heads
        device = next(iter(capture.levels.values())).device
        box = torch.tensor([capture.geometry.to_canvas(detection.box)], dtype=torch.float32, device=device)
        level, window, support = _pooled_level(detector.model, capture, box)
        label = detection.label

        def score(windows: torch.Tensor) -> torch.Tensor:
            logits, _ = rh.box_predictor(rh.box_head(windows))
            return F.softmax(logits, dim=-1)[:, label]

        with torch.no_grad():
            base = float(score(window[None])[0])
        return LocalScorer(level, window, score, support, base)


FAMILY = RcnnFamily()
