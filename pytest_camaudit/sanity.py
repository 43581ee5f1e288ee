"""Sanity checks for explanations, as assertions (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

An explanation that does not change when the model's weights are randomised explains the image,
not the model; one that does not change when the explained box or label changes ignores its
target — the trap of class-agnostic methods such as EigenCAM (grad-cam issue #281: its maps for
different classes are identical). Both checks compare two maps with the Spearman rank correlation
of :func:`pytest_camaudit.metrics.rank_correlation` and fail when it is above ``at_most``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

from . import metrics as M
from .assertions import _fail, iou, validate_threshold
from .errors import ExpectationError
from .records import CheckRecord

if TYPE_CHECKING:
    import torch

    from .auditor import AuditCase
    from .detector import Detector
    from .engine import Detection

SCOPES = ("all", "heads")
"""What :func:`randomised_detector` re-draws: every weight, or only those outside the CAM's target layer."""


def randomised_detector(detector: Detector, scope: str = "all", seed: int = 0) -> Detector:
    """A copy of ``detector`` with its weights randomised; ``detector`` itself is untouched.

    Each floating-point parameter (and the affine buffers of frozen batch norms) is replaced by a
    seeded random permutation of its own values — random weights with the same scale, so the copy
    still runs and its activations stay finite. ``scope="heads"`` leaves the target layer (the
    backbone the CAM reads) as it is and randomises everything else (RPN, box heads): a map that
    survives that does not depend on what the detector decided.
    """
    import torch

    from .detector import Detector

    if scope not in SCOPES:
        raise ExpectationError(f"`scope` must be one of {', '.join(SCOPES)}, got {scope!r}")
    names = {id(m): n for n, m in detector.model.named_modules()}
    target_name = names.get(id(detector.target_layer))
    if target_name is None:
        raise ExpectationError(f"the target layer of {detector.name} is not a submodule of its model; cannot locate it in a copy")
    model = copy.deepcopy(detector.model)
    modules = dict(model.named_modules())
    target = modules[target_name]
    keep = {id(t) for t in target.parameters()} | {id(t) for t in target.buffers()} if scope == "heads" else set()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    tensors: list[torch.Tensor] = list(model.parameters())
    tensors += [b for m in model.modules() if type(m).__name__ == "FrozenBatchNorm2d" for b in (m.weight, m.bias)]
    with torch.no_grad():
        for t in tensors:
            if id(t) in keep or not t.is_floating_point() or t.numel() < 2:
                continue
            perm = torch.randperm(t.numel(), generator=gen).to(t.device)
            t.copy_(t.reshape(-1)[perm].reshape(t.shape))
    return Detector(model=model, class_names=list(detector.class_names), name=f"{detector.name} (randomised {scope})",
                    target_layer=target, levels=detector.levels, device=detector.device,
                    identity=f"{detector.identity}-random-{scope}-{seed}", meta=dict(detector.meta))


def _record(case: AuditCase, kind: str, passed: bool, msg: str, det: Detection | None, measured: dict, thresholds: dict, figure: str | None) -> None:
    __tracebackhide__ = True
    check = CheckRecord(kind, passed, msg if passed else f"{msg}\n  image: {case.name}", det.label_name if det else None,
                        list(det.box) if det else None, det.index if det else None, measured, thresholds, figure)
    case.record(check)
    if not passed:
        raise _fail(check.message, check)


def assert_cam_changes_with_weights(
    case: AuditCase,
    detection: Detection | None = None,
    *,
    at_most: float = 0.5,
    scope: str = "all",
    method: str | None = None,
    seed: int = 0,
) -> float:
    """Assert that the map changes when the model's weights are randomised (model randomisation test).

    The map of ``method`` on this image (explaining ``detection`` for per-box methods) is
    recomputed on :func:`randomised_detector` (``scope``: ``"all"`` or ``"heads"``) and the
    absolute rank correlation of the two maps must be at most ``at_most``: a map that comes back
    inside out (strongly negative correlation) has changed its sign, not what it looks at — as
    EigenCAM does when randomised heads move the detections its sign is oriented by. For a per-box
    method the randomised model explains its detection of the same label that overlaps
    ``detection`` most (any score); if it has none, the map cannot be reproduced without the
    trained weights and the check passes.

    Returns:
        The rank correlation (``-1..1``; ``nan`` when the randomised model had no such detection).
    """
    __tracebackhide__ = True
    from .engine import CamEngine
    from .methods import get_method

    thr = validate_threshold("at_most", at_most, 0.0, 1.0)
    engine = case.auditor.engine
    m = get_method(method or engine.method)
    original = case.cam(detection, method=m.name)
    rnd = CamEngine(randomised_detector(engine.detector, scope, seed), m.name, engine.max_cells, cache_size=1)
    analysis = rnd.analyze(case.image, grad=m.needs_grad)
    target = None
    if m.per_box:
        assert detection is not None  # case.cam raised otherwise
        same = [d for d in analysis.detections if d.label == detection.label and iou(d.box, detection.box) > 0]
        target = max(same, key=lambda d: (iou(d.box, detection.box), d.score), default=None)
        if target is None:
            _record(case, "sanity_weights", True, f"the randomised model ({scope}) no longer detects {detection.describe()}: "
                    "the map depends on the trained weights", detection, {"rank_correlation": None}, {"rank_correlation": thr}, None)
            return float("nan")
    randomised = analysis.cam(m.name, target)
    rho = M.rank_correlation(original.values, randomised.values)
    subject = f"the {m.name} map" + (f" of {detection.describe()}" if m.per_box and detection else "")
    passed = abs(rho) <= thr
    msg = (f"{subject} changes when the weights ({scope}) are randomised: rank correlation {rho:.3f}, |{rho:.3f}| <= {thr:.2f}" if passed else
           f"expected {subject} to change when the model's weights ({scope}) are randomised (|rank correlation| <= {thr:.2f}), "
           f"got {rho:.3f}: the map explains the image, not the model")
    name = f"sanity-random-{scope}"
    if not passed and not any(f[0] == name for f in case.extra_figures):
        case.extra_figures.append((name, f"CAM with randomised weights ({scope})", _overlay(case.image.pixels, randomised.values),
                                   f"{m.name} on the randomised model; rank correlation {rho:.3f} with the trained model's map"))
    _record(case, "sanity_weights", passed, msg, detection, {"rank_correlation": round(rho, 4)}, {"rank_correlation": thr},
            case.figure_for(original, detection.box if detection else None))
    return rho


def _other_target(case: AuditCase, detection: Detection, other: Detection | str | int) -> Detection:
    from .engine import Detection

    if isinstance(other, Detection):
        if other.index == detection.index:
            raise ExpectationError("`other` is the same detection; pass a different box or label to compare with")
        return other
    label = case.detector.label_index(other)
    same_box = [d for d in case.detections if d.label == label and d.index != detection.index and iou(d.box, detection.box) >= 0.5]
    if not same_box:
        raise ExpectationError(
            f"the detector returned no {case.detector.label_name(label)} detection at IoU >= 0.5 with {detection.describe()} "
            "at any score; pass another detection as `other`"
        )
    return max(same_box, key=lambda d: d.score)


def assert_cam_changes_with_target(
    case: AuditCase,
    detection: Detection,
    other: Detection | str | int,
    *,
    at_most: float = 0.9,
    method: str | None = None,
) -> float:
    """Assert that the map changes when the explained target changes.

    ``other`` is another detection (a different box) or a label: then the detector's detection of
    that label on the same box (IoU ≥ 0.5, any score) is explained instead. The rank correlation
    of the two maps must be at most ``at_most``. A class-agnostic method gives the same map for
    both and fails — which is the point: it cannot say *why this box*.

    Returns:
        The rank correlation of the two maps.
    """
    __tracebackhide__ = True
    thr = validate_threshold("at_most", at_most, -1.0, 1.0)
    alt = _other_target(case, detection, other)
    a, b = case.cam(detection, method=method), case.cam(alt, method=method)
    rho = M.rank_correlation(a.values, b.values)
    passed = rho <= thr
    why = " (it is class-agnostic: one map per image)" if a.target is None else ""
    msg = (f"the {a.method} map changes from {detection.describe()} to {alt.describe()}: rank correlation {rho:.3f} <= {thr:.2f}" if passed else
           f"expected the {a.method} map to change when the explained target changes from {detection.describe()} to "
           f"{alt.describe()} (rank correlation <= {thr:.2f}), got {rho:.3f}: the method ignores its target{why}")
    _record(case, "sanity_target", passed, msg, detection, {"rank_correlation": round(rho, 4), "other": alt.describe()},
            {"rank_correlation": thr}, case.figure_for(a, detection.box))
    if a.target is not None:
        case.figure_for(b, alt.box)
    return rho


def _overlay(pixels: np.ndarray, cam: np.ndarray) -> np.ndarray:
    from .report.figures import overlay

    return overlay(pixels, cam)
