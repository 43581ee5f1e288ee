"""Per-box methods on the trained shapes detector: each map explains its own object; costs; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.hooks import count_hooks

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for, get_method, method_names
from pytest_camaudit.methods.drise import DriseConfig, drise_cam
from pytest_camaudit.zoo.world import make_layout, render

PER_BOX = tuple(n for n in method_names() if get_method(n).per_box)
CHANNEL_WEIGHTED = ("gradcam", "xgradcam")
"""Σ_c w_c A_c over the box's RoI footprint: they peak on the footprint's rim as often as inside."""




def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u > 0 else 0.0


def separated_scenes(n: int, seed0: int = 31_000_000):
    """Layouts with ≥ 2 objects whose boxes are ≥ 12 px apart (each map has its own place)."""
    out, seed = [], seed0
    while len(out) < n:
        lay = make_layout(seed)
        seed += 1
        b = lay.boxes
        if len(b) >= 2 and all(
            max(b[j][0] - b[i][2], b[i][0] - b[j][2], b[j][1] - b[i][3], b[i][1] - b[j][3]) >= 12
            for i in range(len(b)) for j in range(i + 1, len(b))
        ):
            out.append(lay)
    return out


@pytest.fixture(scope="module")
def matched(shapes_detector):
    """(analysis, detection) for every ground-truth object of 10 separated scenes found at IoU ≥ 0.5."""
    engine = CamEngine(shapes_detector, "hirescam", cache_size=16)
    pairs = []
    for lay in separated_scenes(10):
        a = engine.analyze(load_image(render(lay)))
        for gt in lay.boxes:
            det = max((d for d in a.detections if d.score >= 0.5), key=lambda d: _iou(d.box, gt), default=None)
            if det is not None and _iou(det.box, gt) >= 0.5:
                pairs.append((a, det))
    assert len(pairs) >= 20
    return pairs


def _peak_in_box(values: np.ndarray, box, margin: float) -> bool:
    py, px = np.unravel_index(int(np.argmax(values)), values.shape)
    x1, y1, x2, y2 = box
    return bool(values.max() > 0 and x1 - margin <= px <= x2 + margin and y1 - margin <= py <= y2 + margin)


@pytest.mark.parametrize("method", [m for m in PER_BOX if m not in ("drise", "attention")])  # attention: DETR only (test_attention.py)
def test_each_objects_map_peaks_inside_its_own_box(matched, method):
    margin = 8 if method in CHANNEL_WEIGHTED else 2  # channel-weighted: within one stride-8 cell of the box
    hits = [_peak_in_box(cam_for(a, method, d).values, d.box, margin) for a, d in matched]
    assert np.mean(hits) >= 0.9, (method, f"{sum(hits)}/{len(hits)}")
    assert count_hooks(matched[0][0].detector.model) == 0


@pytest.mark.slow
def test_drise_map_peaks_inside_its_own_box(matched):
    config = DriseConfig(masks=100, cells=8, batch_size=32, seed=0)
    scenes = {id(a) for a, _ in matched[:8]}
    pairs = [(a, d) for a, d in matched if id(a) in scenes]
    hits = [_peak_in_box(drise_cam(a, d, config).values, d.box, 2) for a, d in pairs]
    assert np.mean(hits) >= 0.9, f"{sum(hits)}/{len(hits)}"


def test_drise_is_seeded_and_one_mask_run_serves_every_box(shapes_detector, monkeypatch):
    engine = CamEngine(shapes_detector, "eigencam")
    a = engine.analyze(load_image(render(make_layout(20_000_003))))
    dets = [d for d in a.detections if d.score >= 0.5]
    calls = []
    real, ours = type(engine.detector).run, engine.detector  # a Detector is frozen: patch its class, count this one's calls
    monkeypatch.setattr(type(ours), "run", lambda self, images: (self is ours and calls.append(len(images))) or real(self, images))
    config = DriseConfig(masks=20, batch_size=8, seed=3)
    maps = [drise_cam(a, d, config).values for d in dets]
    assert calls == [8, 8, 4]  # 20 masks, batched, once for all boxes
    again = engine.analyze(load_image(render(make_layout(20_000_003)).copy()))
    assert np.array_equal(drise_cam(again, dets[0], config).values, maps[0])
    other = drise_cam(a, dets[0], DriseConfig(masks=20, batch_size=8, seed=4)).values
    assert not np.array_equal(other, maps[0])


def test_k_box_gradient_maps_cost_one_forward_and_k_backwards(shapes_detector, monkeypatch):
    engine = CamEngine(shapes_detector, "gradcam")
    a = engine.analyze(load_image(render(make_layout(20_000_003))))
    dets = [d for d in a.detections if d.score >= 0.5]
    backwards = []
    real = a._gradients  # the computation behind the per-box memo: one backward each
    monkeypatch.setattr(a, "_gradients", lambda d: backwards.append(d.index) or real(d))
    for name in ("eigengradcam", "gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"):
        for d in dets:
            cam_for(a, name, d)
    assert engine.forwards == 1
    assert sorted(backwards) == sorted(d.index for d in dets)


class _NoGradScores(torch.nn.Module):
    """Wraps a detector and detaches its scores: gradient methods must refuse, clearly."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.transform = inner.transform
        self.backbone = inner.backbone

    def forward(self, images):
        return [{**o, "scores": o["scores"].detach()} for o in self.inner(images)]


def test_gradient_methods_refuse_scores_that_are_not_differentiable(shapes_detector):
    det = Detector.wrap(_NoGradScores(shapes_detector.model), shapes_detector.class_names, name="detached")
    a = CamEngine(det, "gradcam").analyze(load_image(render(make_layout(20_000_003))))
    with pytest.raises(DetectorRuntimeError, match="do not depend differentiably on its target layer"):
        cam_for(a, "gradcam", a.detections[0])
    with pytest.raises(DetectorRuntimeError, match="AblationCAM does not know how detached"):
        cam_for(a, "ablationcam", a.detections[0])
    assert count_hooks(det.model) == 0


def test_no_hooks_remain_when_a_method_raises_midway(shapes_detector, monkeypatch):
    engine = CamEngine(shapes_detector, "eigencam")
    a = engine.analyze(load_image(render(make_layout(20_000_003))))
    det = a.detections[0]
    head = shapes_detector.model.roi_heads.box_head

    def boom(*_args, **_kw):
        raise RuntimeError("box head on fire")

    monkeypatch.setattr(head, "forward", boom)
    with pytest.raises(DetectorRuntimeError, match="raised RuntimeError while re-scoring .* box head on fire"):
        cam_for(a, "ablationcam", det)
    with pytest.raises(DetectorRuntimeError, match="raised RuntimeError during forward: box head on fire"):
        drise_cam(a, det, DriseConfig(masks=4, batch_size=4))
    with pytest.raises(DetectorRuntimeError, match="box head on fire"):
        cam_for(a, "gradcam", det)  # differentiates through the box head, which raises
    monkeypatch.undo()
    assert count_hooks(shapes_detector.model) == 0
    assert cam_for(a, "ablationcam", det).values.max() == 1.0  # the model is unharmed
