"""ultralytics YOLO (v8, 11, 26): detections, tracing, geometry, gradients per architecture (loading: test_ultralytics_loading.py).

What every family guarantees (bright spot, every method, context fill, hooks) is checked on yolo11n,
yolo26n end-to-end and ``shapes-yolo`` by the contract suite (``tests/detectors/contract``).

Random models are built offline from ultralytics' own yaml files (their batch norms set from one
batch of noise — a fresh YOLO in eval mode has vanishing activations — and their class scores
spread so that detections are neither absent nor saturated); the trained model is the shipped
``shapes-yolo``. Every test runs with the network blocked. Skipped, with the reason, where
ultralytics is not installed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from support.network import block_network
from support.probes import SPOTS, cell_on_image, peak, spot_image
from support.yolo import (  # first: skips this module where ultralytics is not installed
    IMGSZ,
    LABELS,
    PROBE_SPOTS,
    SCENE,
    as_tensor,
    detector,
    full_graph_gradients,
    noise,
    probe_detector,
    random_yolo,
)
from ultralytics.models.yolo.detect import DetectionPredictor

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.ultralytics.runtime import letterbox, letterbox_geometry, model_stride
from pytest_camaudit.detectors.ultralytics.yolo import UltralyticsFamily, yolo_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for

ARCHS = ("yolov8n", "yolo11n", "yolo26n")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every socket connection fails loudly: nothing may reach the network."""
    block_network(monkeypatch)


@pytest.fixture(scope="module")
def zoo() -> Detector:
    return load_detector("shapes-yolo", device="cpu")


def predictor(net: torch.nn.Module, image: np.ndarray, imgsz: int, conf: float, max_det: int = 300) -> dict[str, np.ndarray]:
    """ultralytics' own predictor on a copy of ``net`` (its inference mode and anchor cache stay on
    the copy; its ``select_device`` resets torch's threads, put back here)."""
    threads = torch.get_num_threads()
    try:
        p = DetectionPredictor(overrides={"conf": conf, "imgsz": imgsz, "max_det": max_det, "verbose": False, "save": False,
                                          "rect": True, "mode": "predict"})
        p.setup_model(copy.deepcopy(net), verbose=False)
        boxes = p(source=np.ascontiguousarray(image[..., ::-1]))[0].boxes  # the predictor takes BGR, as cv2 reads
        return {"boxes": boxes.xyxy.numpy(), "scores": boxes.conf.numpy(), "labels": boxes.cls.numpy().astype(np.int64) + 1}
    finally:
        torch.set_num_threads(threads)


# -- detections, labels, tracing -------------------------------------------------------------------


CASES = [("shapes-yolo", SCENE), ("shapes-yolo", "crop"), *((arch, "noise") for arch in ARCHS)]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "image"), CASES, ids=["zoo-square", "zoo-letterboxed", *ARCHS])
def test_detections_are_the_predictors_within_a_tenth_of_a_pixel(zoo, model, image):
    det = zoo if model == "shapes-yolo" else detector(model)
    if image == "crop":
        pixels = load_image(SCENE).pixels[13:150, 2:159]  # 137 x 157: letterboxed into 160 x 160 -> 140 x 160
    else:
        pixels = load_image(SCENE).pixels if image == SCENE else noise(203, 317)
    threads = torch.get_num_threads()
    (ours,) = det.run([as_tensor(pixels)])
    ref = predictor(det.family.network(det.model), pixels, det.family.image_size(det.model), det.family.conf, det.family.max_det)
    assert torch.get_num_threads() == threads
    assert 3 <= len(ref["scores"]) == len(ours["scores"])
    assert np.array_equal(ours["labels"].numpy(), ref["labels"])  # the plugin's label: the model's class + 1
    assert np.abs(ours["boxes"].numpy() - ref["boxes"]).max() <= 0.1
    assert np.abs(ours["scores"].numpy() - ref["scores"]).max() <= 1e-4


def test_class_names_are_the_models_behind_background(zoo):
    d = detector("yolo11n")
    assert d.class_names == ["__background__", *LABELS] and isinstance(d.family, UltralyticsFamily)
    assert [d.label_index(n) for n in LABELS] == [1, 2, 3, 4, 5]
    assert zoo.class_names == ["__background__", "circle", "square", "triangle", "star"]
    assert zoo.family.image_size(zoo.model) == 160 and zoo.meta["imgsz"] == 160
    assert type(zoo.target_layer).__name__ == "Detect"
    assert Detector.wrap(random_yolo("yolov8n")).family.image_size(random_yolo("yolov8n")) == 640  # no training imgsz: 640


@pytest.mark.parametrize("arch", ARCHS)
def test_each_detection_is_traced_to_the_anchor_nms_kept(arch):
    from ultralytics.utils.nms import non_max_suppression

    d = detector(arch)
    image = noise(157, 419, seed=3)
    analysis = CamEngine(d).analyze(load_image(image))
    net = d.family.network(d.model)
    x = torch.from_numpy(letterbox(image, IMGSZ, model_stride(net))).permute(2, 0, 1)[None].contiguous().float() / 255
    with torch.no_grad():
        _, kept = non_max_suppression(net(x), d.family.conf, d.family.iou, max_det=d.family.max_det, return_idxs=True)
    offsets = np.cumsum([0] + [v.shape[-2] * v.shape[-1] for v in analysis.levels.values()])
    cells = [d.family.cell_of(analysis.capture, det) for det in analysis.detections]  # traced on first use
    traced = [int(offsets[i] + y * analysis.levels[name].shape[-1] + x) for name, i, y, x in cells]
    assert len(traced) == len(analysis.detections) > 0 and traced == kept[0].flatten().tolist()


def test_saturated_scores_are_told_apart_by_their_boxes():
    """A random head with large logits scores many anchors exactly 1.0: the decoded boxes decide."""
    model = copy.deepcopy(random_yolo("yolov8n"))
    for branch in model.model[-1].cv3:
        branch[-1].weight.data.mul_(500.0)
    analysis = CamEngine(yolo_detector(model, imgsz=IMGSZ, max_det=20)).analyze(load_image(noise(203, 317, seed=4)))
    assert sum(d.score == 1.0 for d in analysis.detections) >= 5
    family = analysis.detector.family
    assert len({family.cell_of(analysis.capture, d) for d in analysis.detections}) == len(analysis.detections)


# -- geometry and alignment ------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "imgsz"), [((720, 1280), 640), ((203, 317), 320), ((301, 173), 320), ((137, 157), 160)])
def test_geometry_is_where_ultralytics_letterbox_puts_the_image(size, imgsz):
    g = letterbox_geometry(size, imgsz, 32)
    canvas = letterbox(np.zeros((*size, 3), np.uint8), imgsz, 32)
    assert canvas.shape[:2] == g.padded
    inside = np.argwhere((canvas != 114).any(-1))  # the black image, amid grey 114 padding
    (top, left), (bottom, right) = inside.min(0), inside.max(0) + 1
    assert (top, left) == g.offset and (bottom - top, right - left) == g.resized
    if size == (720, 1280):
        assert g.resized == (360, 640) and g.padded == (384, 640) and g.offset == (12.0, 0.0)


WIDE = [s for s in PROBE_SPOTS if s not in SPOTS]  # the contract suite runs SPOTS on the same probe


@pytest.mark.parametrize(("h", "w", "spot"), WIDE, ids=[f"{h}x{w}" for h, w, _ in WIDE])
def test_bright_spot_lands_within_one_feature_cell(h, w, spot):
    cy, cx = spot
    analysis = CamEngine(probe_detector(IMGSZ)).analyze(load_image(spot_image(h, w, cy, cx)))
    g = analysis.geometry
    assert not analysis.detections and g.padded != g.resized or (h, w) == (161, 161)  # letterboxed (but the square)
    cam = cam_for(analysis).values
    assert cam.shape == (h, w) and np.isfinite(cam).all()
    cell_y, cell_x = cell_on_image(g, analysis.grid)
    py, px = peak(cam)
    assert abs(py - cy) <= cell_y and abs(px - cx) <= cell_x, ((py, px), spot, (cell_y, cell_x))


# -- gradients -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "end2end"), [*((a, False) for a in ARCHS), ("yolo26n", True)],
                         ids=[*ARCHS, "yolo26n-end2end"])
def test_box_gradients_equal_the_full_graphs(arch, end2end):
    d = detector(arch, end2end)
    image = noise(157, 419, seed=5)
    analysis = CamEngine(d).analyze(load_image(image))
    assert not analysis.has_graph  # no autograd forward was needed
    for det in analysis.detections[:3]:
        local = list(analysis.gradients(det).values())
        full = full_graph_gradients(d, image, analysis.capture.memo["cells"][det.index], det.label - 1)
        touched = [(a, b) for a, b in zip(local, full, strict=True) if float(b.abs().max()) > 0]
        assert len(touched) == 1  # one level, one window
        a, b = touched[0]
        assert int((a != 0).any(0).sum()) <= 25  # 5 x 5 cells
        r = float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
        assert r >= 0.999 and torch.allclose(a, b, rtol=1e-4, atol=1e-6 * float(b.abs().max()))


# -- AblationCAM ------------------------------------------------------------------------------------

def test_ablation_rescores_the_detection_from_its_window(zoo):
    from pytest_camaudit.methods.ablation import local_scorer

    analysis = CamEngine(zoo).analyze(load_image(SCENE))
    for det in analysis.detections[:4]:
        scorer = local_scorer(analysis, det)
        assert abs(scorer.base - det.score) <= 1e-5 and tuple(scorer.window.shape[-2:]) <= (5, 5)
