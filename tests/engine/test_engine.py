"""The engine: one forward per image, per-box gradients, hooks always removed, context batching."""

from __future__ import annotations

import numpy as np
import pytest
from support.hooks import count_hooks
from support.probes import RaisingDetector

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for
from pytest_camaudit.metrics import box_mass
from pytest_camaudit.zoo.world import make_layout, render


def _separated_scenes(n: int, seed0: int = 31_000_000):
    """Scenes whose objects' boxes are at least 12 px apart (so each map has its own place)."""
    out = []
    seed = seed0
    while len(out) < n:
        lay = make_layout(seed)
        seed += 1
        b = lay.boxes
        if len(b) < 2:
            continue
        ok = all(
            max(b[j][0] - b[i][2], b[i][0] - b[j][2], b[j][1] - b[i][3], b[i][1] - b[j][3]) >= 12
            for i in range(len(b)) for j in range(i + 1, len(b))
        )
        if ok:
            out.append(lay)
    return out


def test_one_forward_serves_detections_and_every_map(shapes_detector):
    engine = CamEngine(shapes_detector, "eigengradcam")
    img = load_image(render(make_layout(20_000_003)))
    a = engine.analyze(img)
    dets = [d for d in a.detections if d.score > 0.5]
    assert len(dets) >= 2
    maps = [cam_for(a, detection=d) for d in dets]
    cam_for(a, "eigencam")
    again = engine.analyze(load_image(img.pixels.copy()))  # same content, new array: cached
    assert again is a
    assert engine.forwards == 1
    assert not np.allclose(maps[0].values, maps[1].values)


def test_gradient_map_after_a_plain_forward_costs_no_more_forward_on_a_known_family(shapes_engine):
    img = load_image(render(make_layout(20_000_001)))
    a = shapes_engine.analyze(img)  # eigencam engine: no autograd
    assert not a.has_graph
    cam_for(a, "eigengradcam", a.detections[0])  # through the box's own proposal
    cam_for(a, "eigengradcam", a.detections[1])
    assert shapes_engine.forwards == 1 and not a.has_graph


def test_gradient_map_of_an_unknown_family_costs_one_more_forward_with_autograd(shapes_detector):
    from pytest_camaudit.detectors.base import Detector

    plain = Detector.wrap(shapes_detector.model, shapes_detector.class_names, target_layer=shapes_detector.model.backbone.fpn)
    assert plain.family.name == "torchvision-protocol"  # a custom target layer: no box-local path
    engine = CamEngine(plain, "eigencam")
    a = engine.analyze(load_image(render(make_layout(20_000_001))))
    assert not a.has_graph
    cam_for(a, "eigengradcam", a.detections[0])
    assert engine.forwards == 2 and a.has_graph
    cam_for(a, "eigengradcam", a.detections[1])
    assert engine.forwards == 2


def test_per_box_maps_peak_inside_their_own_box(shapes_detector):
    engine = CamEngine(shapes_detector, "eigengradcam")
    hits = total = 0
    for lay in _separated_scenes(10):
        a = engine.analyze(load_image(render(lay)))
        for gt in lay.boxes:
            cands = [d for d in a.detections if d.score >= 0.5]
            det = max(cands, key=lambda d: _iou(d.box, gt), default=None)
            if det is None or _iou(det.box, gt) < 0.5:
                continue
            cam = cam_for(a, detection=det).values
            py, px = np.unravel_index(np.argmax(cam), cam.shape)
            x1, y1, x2, y2 = det.box
            total += 1
            hits += int(x1 - 2 <= px <= x2 + 2 and y1 - 2 <= py <= y2 + 2)
    assert total >= 20
    assert hits / total >= 0.9, (hits, total)


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u > 0 else 0.0


def test_eigengradcam_concentrates_more_mass_in_the_box_than_eigencam(shapes_detector):
    engine = CamEngine(shapes_detector, "eigengradcam")
    grad_mass, eigen_mass = [], []
    for lay in _separated_scenes(6, 32_000_000):
        a = engine.analyze(load_image(render(lay)))
        for d in [d for d in a.detections if d.score >= 0.5]:
            grad_mass.append(box_mass(cam_for(a, detection=d).values, d.box))
            eigen_mass.append(box_mass(cam_for(a, "eigencam").values, d.box))
    assert np.mean(grad_mass) > np.mean(eigen_mass) + 0.1


def test_hooks_are_removed_after_success_and_after_the_model_raises(shapes_detector):
    engine = CamEngine(shapes_detector, "eigengradcam")
    engine.analyze(load_image(render(make_layout(5))))
    assert count_hooks(shapes_detector.model) == 0
    bad = Detector.wrap(RaisingDetector(), ["__background__", "x"], name="raiser")
    engine = CamEngine(bad, "eigencam")
    with pytest.raises(DetectorRuntimeError, match="raiser raised RuntimeError during forward: boom"):
        engine.analyze(load_image(np.zeros((32, 32, 3), np.uint8)))
    assert count_hooks(bad.model) == 0


def test_context_check_batches_all_boxes_of_an_image(shapes_engine, monkeypatch):
    img = load_image(render(make_layout(20_000_000)))
    a = shapes_engine.analyze(img)
    calls = []
    real = shapes_engine.detect
    monkeypatch.setattr(shapes_engine, "detect", lambda images, **kw: calls.append(len(images)) or real(images, **kw))
    dets = [d for d in a.detections if d.score >= 0.5]
    results = shapes_engine.without_context(a, dets)
    assert calls == [len(dets)]
    for r in results:
        x1, y1, x2, y2 = r.kept
        outside = np.ones(r.image.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert (r.image[outside] == shapes_engine.fill_colour()).all()
        assert (r.image[~outside] == img.pixels[~outside]).all()
        assert 0.0 <= r.score_without <= 1.0
