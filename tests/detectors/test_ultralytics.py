"""ultralytics YOLO (v8, 11, 26): detections, tracing, geometry, gradients, methods (loading: test_ultralytics_loading.py).

Random models are built offline from ultralytics' own yaml files (their batch norms set from one
batch of noise — a fresh YOLO in eval mode has vanishing activations — and their class scores
spread so that detections are neither absent nor saturated); the trained model is the shipped
``shapes-yolo``. Every test runs with the network blocked. Skipped, with the reason, where
ultralytics is not installed.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
from support.hooks import count_hooks
from support.network import block_network
from support.probes import cell_on_image, peak, spot_image
from support.yolo import PROBE_SPOTS, SCENE, as_tensor, noise, probe_detector  # first: skips this module where ultralytics is not installed
from ultralytics.models.yolo.detect import DetectionPredictor
from ultralytics.nn.tasks import DetectionModel

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.ultralytics.head import classification_branches
from pytest_camaudit.detectors.ultralytics.runtime import letterbox, letterbox_geometry, model_stride
from pytest_camaudit.detectors.ultralytics.yolo import UltralyticsFamily, yolo_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for, drise_method

ARCHS = ("yolov8n", "yolo11n", "yolo26n")
LABELS = ("cat", "dog", "car", "tree", "person")
IMGSZ = 320


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every socket connection fails loudly: nothing may reach the network."""
    block_network(monkeypatch)


@functools.cache
def random_yolo(arch: str, end2end: bool = False) -> torch.nn.Module:
    """``arch``.yaml with 5 classes: batch norms set from a batch of noise (momentum 1 for one
    train-mode forward), class biases 0 and class weights × 0.02 (scores around 0.5)."""
    torch.manual_seed(0)
    model = DetectionModel(f"{arch}.yaml", nc=len(LABELS), verbose=False)
    model.names = dict(enumerate(LABELS))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(0)))
    for m in norms:
        m.momentum = 0.03
    head = model.model[-1]
    for branches in (head.cv3, getattr(head, "one2one_cv3", None) or []):
        for branch in branches:
            branch[-1].bias.data.zero_()
            branch[-1].weight.data.mul_(0.02)
    model.end2end = end2end
    return model.eval()


@functools.cache
def detector(arch: str, end2end: bool = False) -> Detector:
    return yolo_detector(random_yolo(arch, end2end), imgsz=IMGSZ, max_det=20, name=f"{arch}{'-e2e' if end2end else ''}")


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
    family = analysis.engine.detector.family
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


@pytest.mark.parametrize(("h", "w", "spot"), PROBE_SPOTS, ids=[f"{h}x{w}" for h, w, _ in PROBE_SPOTS])
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


def full_graph_gradients(d: Detector, image: np.ndarray, cell: tuple, cls: int) -> list[torch.Tensor]:
    """``d logit / d level`` of the class logit at ``cell`` through one autograd forward of the whole model."""
    net = d.family.network(d.model)
    head = net.model[-1]
    x = torch.from_numpy(letterbox(image, IMGSZ, model_stride(net))).permute(2, 0, 1)[None].contiguous().float() / 255
    leaves: list[torch.Tensor] = []
    logits: dict[int, torch.Tensor] = {}

    def as_leaves(_m, args):
        leaves.extend(t.detach().requires_grad_(True) for t in args[0])
        return (list(leaves),)

    handles = [head.register_forward_pre_hook(as_leaves)]
    handles += [b.register_forward_hook(lambda _m, _i, out, k=k: logits.setdefault(k, out)) for k, b in enumerate(classification_branches(head))]
    try:
        with torch.enable_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    _, i, y, xx = cell
    grads = torch.autograd.grad(logits[i][0, cls, y, xx], leaves, allow_unused=True)
    return [g[0] if g is not None else torch.zeros_like(t[0]) for g, t in zip(grads, leaves, strict=True)]


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


# -- methods, context, hooks -----------------------------------------------------------------------

METHODS = ("eigencam", "eigengradcam", "gradcam", "hirescam", "layercam", "ablationcam", "drise")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["shapes-yolo", "yolo26n-end2end"])
def test_every_method_gives_a_finite_map_of_the_image_size(zoo, model, method):
    d = zoo if model == "shapes-yolo" else detector("yolo26n", True)
    image = load_image(SCENE).pixels[:, :150] if model == "shapes-yolo" else noise(203, 317, seed=7)
    analysis = CamEngine(d).analyze(load_image(image))
    det = analysis.detections[0]
    cam = drise_method(masks=8, cells=4, batch_size=8).compute(analysis, det) if method == "drise" else cam_for(analysis, method, det)
    assert cam.values.shape == image.shape[:2] and np.isfinite(cam.values).all()
    assert float(cam.values.max()) == pytest.approx(1.0) and not cam.degenerate


def test_ablation_rescores_the_detection_from_its_window(zoo):
    from pytest_camaudit.methods.ablation import local_scorer

    analysis = CamEngine(zoo).analyze(load_image(SCENE))
    for det in analysis.detections[:4]:
        scorer = local_scorer(analysis, det)
        assert abs(scorer.base - det.score) <= 1e-5 and tuple(scorer.window.shape[-2:]) <= (5, 5)


def test_context_check_fills_with_the_letterbox_grey(zoo):
    engine = CamEngine(zoo)
    analysis = engine.analyze(load_image(SCENE))
    det = analysis.detections[0]
    (result,) = engine.without_context(analysis, [det])
    assert result.score_with == det.score and 0.0 <= result.score_without <= 1.0
    assert tuple(int(v) for v in result.image[0, 0]) == (114, 114, 114)


def test_no_hooks_of_ours_are_left_even_when_the_model_raises(zoo, monkeypatch):
    engine = CamEngine(zoo)
    before = count_hooks(zoo.model)
    analysis = engine.analyze(load_image(load_image(SCENE).pixels[:, 10:]))
    for method in ("eigencam", "hirescam", "ablationcam"):
        cam_for(analysis, method, analysis.detections[0])
    engine.without_context(analysis, analysis.detections[:1])
    assert count_hooks(zoo.model) == before == 0

    def boom(*args, **kwargs):
        raise RuntimeError("boom inside the Detect head")

    monkeypatch.setattr(zoo.target_layer, "forward", boom)
    with pytest.raises(DetectorRuntimeError, match="boom inside the Detect head"):
        engine.analyze(load_image(noise(150, 170, seed=10)))
    assert count_hooks(zoo.model) == 0
