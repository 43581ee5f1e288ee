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

from .. import metrics as M
from ..datatypes import Detection, MapPicture
from ..errors import ExpectationError
from .verdicts import detection_arg, iou, names_the_case, threshold, verdict

if TYPE_CHECKING:
    from ..detectors.base import Detector
    from .casebase import CaseBase

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

    from ..detectors.base import Detector

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
    tensors += [m.get_buffer(b) for m in model.modules() if type(m).__name__ == "FrozenBatchNorm2d" for b in ("weight", "bias")]
    with torch.no_grad():
        for t in tensors:
            if id(t) in keep or not t.is_floating_point() or t.numel() < 2:
                continue
            perm = torch.randperm(t.numel(), generator=gen).to(t.device)
            t.copy_(t.reshape(-1)[perm].reshape(t.shape))
    return Detector(model=model, class_names=list(detector.class_names), name=f"{detector.name} (randomised {scope})",
                    target_layer=target, family=detector.family, levels=detector.levels, device=detector.device,
                    identity=f"{detector.identity}-random-{scope}-{seed}", meta=dict(detector.meta))


@names_the_case("sanity_weights")
def assert_cam_changes_with_weights(
    case: CaseBase,
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
    from ..engine.engine import CamEngine
    from ..methods.registry import cam_for, get_method, needs_graph

    thr = threshold("at_most", at_most, 0.0, 1.0)
    engine = case.engine
    m = get_method(method or engine.method)
    original = case.cam(detection, method=m.name)
    rnd = CamEngine(randomised_detector(engine.detector, scope, seed), m.name, engine.max_cells, cache_size=1)
    analysis = rnd.analyze(case.image, grad=needs_graph(rnd, m.name))
    target = None
    if m.per_box:
        assert detection is not None  # case.cam raised otherwise
        same = [d for d in analysis.detections if d.label == detection.label and iou(d.box, detection.box) > 0]
        target = max(same, key=lambda d: (iou(d.box, detection.box), d.score), default=None)
        if target is None:
            verdict(case, "sanity_weights", True, f"the randomised model ({scope}) no longer detects {detection.describe()}: "
                    "the map depends on the trained weights", "", detection=detection, box=detection.box,
                    measured={"rank_correlation": None}, thresholds={"rank_correlation": thr})
            return float("nan")
    randomised = cam_for(analysis, m.name, target)
    rho = M.rank_correlation(original.values, randomised.values)
    subject = f"the {m.name} map" + (f" of {detection.describe()}" if m.per_box and detection else "")
    passed = abs(rho) <= thr
    msg = (f"{subject} changes when the weights ({scope}) are randomised: rank correlation {rho:.3f}, |{rho:.3f}| <= {thr:.2f}" if passed else
           f"expected {subject} to change when the model's weights ({scope}) are randomised (|rank correlation| <= {thr:.2f}), "
           f"got {rho:.3f}: the map explains the image, not the model")
    if not passed:
        case.add_picture(MapPicture(f"sanity-random-{scope}", f"CAM with randomised weights ({scope})", randomised.values,
                                    caption=f"{m.name} on the randomised model; rank correlation {rho:.3f} with the trained model's map"))
    verdict(case, "sanity_weights", passed, msg, msg, detection=detection, box=detection.box if detection else None,
            measured={"rank_correlation": round(rho, 4)}, thresholds={"rank_correlation": thr},
            figure=case.figure_for(original, detection.box if detection else None))
    return rho


def _other_target(case: CaseBase, detection: Detection, other: Detection | str | int) -> Detection:
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


@names_the_case("sanity_target")
def assert_cam_changes_with_target(
    case: CaseBase,
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
    detection = detection_arg(detection, "assert_cam_changes_with_target")
    thr = threshold("at_most", at_most, -1.0, 1.0)
    alt = _other_target(case, detection, other)
    a, b = case.cam(detection, method=method), case.cam(alt, method=method)
    rho = M.rank_correlation(a.values, b.values)
    passed = rho <= thr
    why = " (it is class-agnostic: one map per image)" if a.target is None else ""
    msg = (f"the {a.method} map changes from {detection.describe()} to {alt.describe()}: rank correlation {rho:.3f} <= {thr:.2f}" if passed else
           f"expected the {a.method} map to change when the explained target changes from {detection.describe()} to "
           f"{alt.describe()} (rank correlation <= {thr:.2f}), got {rho:.3f}: the method ignores its target{why}")
    figure = case.figure_for(a, detection.box)
    if a.target is not None:
        case.figure_for(b, alt.box)  # both maps on the card
    verdict(case, "sanity_target", passed, msg, msg, detection=detection, box=detection.box,
            measured={"rank_correlation": round(rho, 4), "other": alt.describe()}, thresholds={"rank_correlation": thr},
            figure=figure)
    return rho
