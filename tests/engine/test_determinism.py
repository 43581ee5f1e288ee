"""Determinism and resources: the same inputs give the same bits, whatever else ran with them."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
from support.hooks import count_hooks
from support.probes import RaisingDetector

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for
from pytest_camaudit.zoo.dataset import write_coco_dataset
from pytest_camaudit.zoo.world import make_scene

SUITE = '''
import json, pathlib, pytest
DOC = json.loads(pathlib.Path("data/annotations.json").read_text())
NAMES = {c["id"]: c["name"] for c in DOC["categories"]}
OBJECTS = [(im["file_name"], NAMES[a["category_id"]], [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]])
           for im in DOC["images"] for a in DOC["annotations"] if a["image_id"] == im["id"]]

@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o[0]}-{o[1]}-{o[2][0]:.0f}")
@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_object(camaudit, obj, method):
    case = camaudit.audit("data/images/" + obj[0])
    det = case.assert_detected(obj[1], obj[2], score_threshold=0.05, iou_threshold=0.1)
    case.assert_cam_mass(det, at_least=0.0, method=method)
    case.assert_survives_without_context(det, max_drop=1.0)
'''




@pytest.mark.slow
def test_the_same_run_twice_gives_bit_identical_metrics(pytester):
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_004)), "shapes")
    pytester.makepyfile(SUITE)
    docs = []
    for run in ("a", "b"):
        out = pytester.path / f"{run}.json"
        pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-json={out}")
        docs.append(json.loads(out.read_text()))
    a, b = docs
    assert len(a["cases"]) >= 16
    assert [(c["nodeid"], c["detections"], c["metrics"]) for c in a["cases"]] == [(c["nodeid"], c["detections"], c["metrics"]) for c in b["cases"]]
    assert a["per_class"] == b["per_class"]


@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_maps_are_bit_identical_from_fresh_engines(shapes_detector, method):
    img = load_image(make_scene(20_000_002).image)
    maps = []
    for _ in range(2):
        a = CamEngine(shapes_detector, method).analyze(img)
        maps.append([cam_for(a, method, d).values.tobytes() for d in a.detections[:3]])
    assert maps[0] == maps[1]


def test_results_do_not_depend_on_batch_composition_or_order(shapes_detector):
    images = [np.ascontiguousarray(make_scene(20_000_000 + i).image) for i in range(4)]
    # with --camaudit-batch-size=1, bit for bit
    engine = CamEngine(shapes_detector, "eigengradcam", batch_size=1)
    alone = engine.detect([images[0]])[0]
    in_batch = engine.detect([images[2], images[0], images[1]])[1]
    assert [(d.box, d.score) for d in alone] == [(d.box, d.score) for d in in_batch]
    # batched (the default), within float32 rounding: boxes 1e-3 px, scores 1e-5 (tests/engine/test_batching.py)
    batched = CamEngine(shapes_detector, "eigengradcam").detect([images[2], images[0], images[1]])[1]
    assert [d.label for d in batched] == [d.label for d in alone]
    assert max(abs(a.score - b.score) for a, b in zip(alone, batched, strict=True)) <= 1e-5
    assert np.abs(np.array([d.box for d in alone]) - np.array([d.box for d in batched])).max() <= 1e-3
    # the context check of one detection does not depend on which others were checked with it
    analysis = engine.analyze(load_image(images[0]))
    dets = [d for d in analysis.detections if d.score >= 0.5]
    together = {r.detection.index: r.score_without for r in engine.without_context(analysis, dets)}
    one_by_one = {d.index: engine.without_context(analysis, [d])[0].score_without for d in dets}
    assert together == one_by_one
    # nor does an image's analysis depend on what the engine saw before it
    fresh = CamEngine(shapes_detector, "eigengradcam")
    for other in images[1:]:
        cam_for(fresh.analyze(load_image(other)), detection=fresh.analyze(load_image(other)).detections[0])
    again = fresh.analyze(load_image(images[0]))
    assert [(d.box, d.score) for d in again.detections] == [(d.box, d.score) for d in analysis.detections]
    assert cam_for(again, detection=again.detections[0]).values.tobytes() == cam_for(analysis, detection=analysis.detections[0]).values.tobytes()


def test_many_maps_leave_no_hooks_and_a_bounded_cache(shapes_detector):
    engine = CamEngine(shapes_detector, "eigengradcam", cache_size=4)
    bad = CamEngine(Detector.wrap(RaisingDetector(), ["__background__", "x"], name="raiser"), "eigencam")
    computed, made = 0, []
    for i in range(12):
        analysis = engine.analyze(load_image(make_scene(21_000_000 + i).image))
        made.append(weakref.ref(analysis))
        for d in analysis.detections[:3]:
            cam_for(analysis, "eigengradcam", d)
            cam_for(analysis, "eigencam")
            computed += 2
        with pytest.raises(DetectorRuntimeError):
            bad.analyze(load_image(np.zeros((32, 32, 3), np.uint8)))
    assert computed >= 50
    assert count_hooks(shapes_detector.model) == 0 and count_hooks(bad.detector.model) == 0
    assert len(engine._cache) == 4
    assert sum(a.has_graph for a in engine._cache.values()) <= 1  # only the newest keeps its autograd graph
    del analysis
    gc.collect()
    assert sum(r() is not None for r in made) == 4  # evicted analyses (activations, graphs) are freed
