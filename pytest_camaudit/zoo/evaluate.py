"""Detection quality on held-out shapes scenes: mAP@0.5, per-class AP and recall, cue dependence.

Detections are :class:`Detections` per image (``boxes [N, 4]`` xyxy in image pixels, ``labels [N]``
in the zoo's 1-based indices, ``scores [N]``). :func:`evaluate_model` and :func:`cue_dependence`
take a :class:`~pytest_camaudit.detectors.base.Detector` (run by its own ``detect``: the zoo has no
detection runner of its own), a torchvision-style ``nn.Module`` (wrapped into one) or a
:data:`DetectFn`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from ..datatypes import Detection
from ..detectors.base import Detector
from .world import CLASSES, CUE_CLASS, Layout, cue_objects, make_layout, render, render_variant

EVAL_SEED_BASE = 10_000_000
"""Held-out scenes use seeds from here on; training uses seeds below 1,000,000."""


@dataclass(frozen=True)
class Detections:
    """Detections of one image: ``boxes [N, 4]`` xyxy, ``labels [N]``, ``scores [N]`` (numpy)."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (PASCAL VOC 2010+): area under the monotone precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def _match(det: Detections, gt_boxes: np.ndarray, gt_labels: np.ndarray, cls: int, iou_thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy, score-ordered matching of class ``cls``: (scores, is_true_positive) of its detections."""
    keep = det.labels == cls
    boxes, scores = det.boxes[keep], det.scores[keep]
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    gts = gt_boxes[gt_labels == cls]
    tp = np.zeros(len(scores), dtype=bool)
    if len(gts) and len(boxes):
        iou = box_iou(torch.as_tensor(boxes), torch.as_tensor(gts)).numpy()
        taken = np.zeros(len(gts), dtype=bool)
        for i in range(len(boxes)):
            cand = np.where(~taken & (iou[i] >= iou_thr), iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= 0:
                taken[j] = True
                tp[i] = True
    return scores, tp


@dataclass(frozen=True)
class EvalResult:
    """mAP@IoU and per-class AP / recall (recall counts matches with score ≥ threshold)."""

    map50: float
    ap: dict[str, float]
    recall: dict[str, float]
    n_objects: dict[str, int]
    n_images: int
    score_threshold: float

    def table(self) -> str:
        """A plain-text table, one row per class."""
        rows = [f"{'class':<12}{'objects':>8}{'AP@0.5':>9}{'recall':>9}"]
        for name in self.ap:
            rows.append(f"{name:<12}{self.n_objects[name]:>8}{self.ap[name]:>9.4f}{self.recall[name]:>9.4f}")
        rows.append(f"{'mAP@0.5':<12}{sum(self.n_objects.values()):>8}{self.map50:>9.4f}")
        return "\n".join(rows)


def evaluate_detections(
    detections: Sequence[Detections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> EvalResult:
    """mAP over the classes present in the ground truth; recall at ``score_threshold``."""
    ap: dict[str, float] = {}
    recall: dict[str, float] = {}
    counts: dict[str, int] = {}
    for cls in range(1, len(classes)):
        n_gt = int(sum(int((g == cls).sum()) for g in gt_labels))
        if n_gt == 0:
            continue
        all_scores, all_tp = [], []
        for det, gb, gl in zip(detections, gt_boxes, gt_labels, strict=True):
            s, tp = _match(det, gb, gl, cls, iou_threshold)
            all_scores.append(s)
            all_tp.append(tp)
        scores = np.concatenate(all_scores)
        tp = np.concatenate(all_tp)
        order = np.argsort(-scores, kind="stable")
        tp, scores = tp[order], scores[order]
        ctp = np.cumsum(tp)
        prec = ctp / np.arange(1, len(tp) + 1) if len(tp) else np.zeros(0)
        rec = ctp / n_gt if len(tp) else np.zeros(0)
        ap[classes[cls]] = average_precision(rec, prec)
        recall[classes[cls]] = float(tp[scores >= score_threshold].sum() / n_gt)
        counts[classes[cls]] = n_gt
    return EvalResult(float(np.mean(list(ap.values()))), ap, recall, counts, len(detections), score_threshold)


def as_arrays(detections: Sequence[Detection]) -> Detections:
    """One image's :class:`~pytest_camaudit.datatypes.Detection` s as :class:`Detections` (float32 boxes and scores, int64 labels)."""
    boxes = np.asarray([d.box for d in detections], dtype=np.float32).reshape(-1, 4)
    return Detections(boxes, np.asarray([d.label for d in detections], dtype=np.int64),
                      np.asarray([d.score for d in detections], dtype=np.float32))


def detect(model: Detector | torch.nn.Module, images: Iterable[np.ndarray], batch_size: int = 16) -> list[Detections]:
    """``model``'s detections of ``uint8 [H, W, 3]`` RGB images, ``batch_size`` per forward, by
    :meth:`Detector.detect` (an ``nn.Module`` is wrapped with :meth:`Detector.wrap`)."""
    detector = model if isinstance(model, Detector) else Detector.wrap(model)
    tensors = [torch.from_numpy(img).permute(2, 0, 1).float().div(255).to(detector.device) for img in images]
    return [as_arrays(dets) for dets in detector.detect(tensors, batch_size)]


DetectFn = Callable[[Sequence[np.ndarray]], list[Detections]]
"""``uint8 [H, W, 3]`` RGB images → one :class:`Detections` per image, in order."""


def detections_of(model: Detector | torch.nn.Module | DetectFn) -> DetectFn:
    """``model``'s :data:`DetectFn`: :func:`detect` for a :class:`Detector` or an ``nn.Module``, else ``model`` itself."""
    if isinstance(model, (Detector, torch.nn.Module)):
        detector = model if isinstance(model, Detector) else Detector.wrap(model)
        return functools.partial(detect, detector)
    return model


def evaluate_model(
    model: Detector | torch.nn.Module | DetectFn,
    variant: str = "shapes",
    n_scenes: int = 200,
    seed_base: int = EVAL_SEED_BASE,
    progress: Callable[[str], None] | None = None,
) -> EvalResult:
    """mAP@0.5 and per-class AP/recall of ``model`` (a detector or a :data:`DetectFn`) on ``n_scenes``
    held-out scenes of ``variant``."""
    layouts = [make_layout(seed_base + i) for i in range(n_scenes)]
    images = [render_variant(lay, variant) for lay in layouts]
    if progress:
        progress(f"evaluating on {n_scenes} held-out {variant!r} scenes (seeds {seed_base}..{seed_base + n_scenes - 1})")
    dets = detections_of(model)(images)
    return evaluate_detections(dets, [lay.boxes for lay in layouts], [lay.labels for lay in layouts])


@dataclass(frozen=True)
class CueDependence:
    """How a detector's verdicts move when the cue is removed from / added to objects.

    Attributes:
        recall_with_cue: recall@0.5 (IoU ≥ 0.5, right label) of cue-class objects carrying the cue.
        recall_without_cue: the same objects, same scenes, cue removed.
        mean_score_with_cue / mean_score_without_cue: the cue-class score of the best-overlapping
            detection (0 when none overlaps at IoU ≥ 0.5).
        flip_rate: share of other-class objects that, once given the cue, are detected as the cue
            class (score ≥ 0.5, IoU ≥ 0.5) while they were not without it.
        n_cue_objects / n_other_objects: counts behind the rates.
    """

    recall_with_cue: float
    recall_without_cue: float
    mean_score_with_cue: float
    mean_score_without_cue: float
    flip_rate: float
    n_cue_objects: int
    n_other_objects: int

    @property
    def recall_drop(self) -> float:
        """Recall lost, in points of percentage, when the cue is removed."""
        return 100.0 * (self.recall_with_cue - self.recall_without_cue)

    def summary(self) -> str:
        return (
            f"{CUE_CLASS} recall@0.5 with cue {self.recall_with_cue:.3f}, without {self.recall_without_cue:.3f} "
            f"(drop {self.recall_drop:.1f} points; mean score {self.mean_score_with_cue:.3f} -> "
            f"{self.mean_score_without_cue:.3f}; {self.n_cue_objects} objects)\n"
            f"cue added to other classes: {100 * self.flip_rate:.1f}% relabelled {CUE_CLASS} "
            f"({self.n_other_objects} objects)"
        )


def _class_score(det: Detections, box: np.ndarray, cls: int) -> float:
    keep = det.labels == cls
    if not keep.any():
        return 0.0
    iou = box_iou(torch.as_tensor(det.boxes[keep]), torch.as_tensor(box[None])).numpy()[:, 0]
    scores = np.where(iou >= 0.5, det.scores[keep], 0.0)
    return float(scores.max())


def cue_dependence(model: Detector | torch.nn.Module | DetectFn, n_scenes: int = 200, seed_base: int = EVAL_SEED_BASE) -> CueDependence:
    """Measure dependence on the spurious cue on held-out ``shapes-shortcut`` scenes (decals
    drawn), by exact counterfactual renders that differ only in the tag pixels. ``model``: a
    detector or a :data:`DetectFn`."""
    cue_cls = CLASSES.index(CUE_CLASS)
    run = detections_of(model)
    layouts: list[Layout] = [make_layout(seed_base + i) for i in range(n_scenes)]
    with_cue = run([render(lay, cue_objects(lay, "shapes-shortcut"), decals=True) for lay in layouts])
    without = run([render(lay, (), decals=True) for lay in layouts])
    all_cues = run([render(lay, range(len(lay.objects)), decals=True) for lay in layouts])
    s_with, s_without, flips = [], [], []
    for lay, dw, dn, da in zip(layouts, with_cue, without, all_cues, strict=True):
        for obj in lay.objects:
            box = np.asarray(obj.box, dtype=np.float32)
            if obj.label == cue_cls:
                s_with.append(_class_score(dw, box, cue_cls))
                s_without.append(_class_score(dn, box, cue_cls))
            else:
                before = _class_score(dn, box, cue_cls) >= 0.5
                after = _class_score(da, box, cue_cls) >= 0.5
                flips.append(after and not before)
    sw, sn = np.asarray(s_with), np.asarray(s_without)
    return CueDependence(
        recall_with_cue=float((sw >= 0.5).mean()),
        recall_without_cue=float((sn >= 0.5).mean()),
        mean_score_with_cue=float(sw.mean()),
        mean_score_without_cue=float(sn.mean()),
        flip_rate=float(np.mean(flips)) if flips else 0.0,
        n_cue_objects=len(sw),
        n_other_objects=len(flips),
    )
