"""ultralytics RT-DETR: detections, the stretch, tracing, loading (``.yaml``, ``.pt``, a conftest's model object).

What every family guarantees (bright spot, gradients against the full graph and float64 finite
differences, every method, context fill, hooks, discovery) is checked on the probe by the contract suite
(``tests/detectors/contract``); here what is particular to RT-DETR. Every test runs with the network
blocked; skipped, with the reason, where ultralytics is not installed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from support.network import block_network
from support.probes import cell_on_image, peak, spot_image
from support.rtdetr import IMGSZ, PROBE, detector, random_rtdetr, spot_detector  # first: skips where ultralytics is missing
from support.yolo import LABELS, as_tensor, noise
from ultralytics.data.augment import LetterBox
from ultralytics.models.rtdetr.predict import RTDETRPredictor

from pytest_camaudit.detectors import registry
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.ultralytics import rtdetr, yolo
from pytest_camaudit.detectors.ultralytics.rtdetr import UltralyticsRtDetrFamily, rtdetr_detector, stretch
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import ModelLoadError
from pytest_camaudit.methods import cam_for


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every socket connection fails loudly: nothing may reach the network."""
    block_network(monkeypatch)


def predictor(net: torch.nn.Module, image: np.ndarray, imgsz: int, conf: float, max_det: int = 300) -> dict[str, np.ndarray]:
    """ultralytics' own ``RTDETRPredictor`` on a copy of ``net`` (its ``select_device`` resets torch's threads, put back here)."""
    threads = torch.get_num_threads()
    try:
        p = RTDETRPredictor(overrides={"conf": conf, "imgsz": imgsz, "max_det": max_det, "verbose": False, "save": False, "mode": "predict"})
        p.setup_model(copy.deepcopy(net), verbose=False)
        boxes = p(source=np.ascontiguousarray(image[..., ::-1]))[0].boxes  # the predictor takes BGR, as cv2 reads
        return {"boxes": boxes.xyxy.numpy(), "scores": boxes.conf.numpy(), "labels": boxes.cls.numpy().astype(np.int64) + 1}
    finally:
        torch.set_num_threads(threads)


# -- running, geometry, tracing ----------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(203, 317), (480, 640)])
def test_detections_are_the_predictors_stretch_no_nms_no_clipping(h, w):
    d = detector()
    image = noise(h, w, seed=h)
    assert np.array_equal(stretch(image, d.family.canvas(d.model)), LetterBox((IMGSZ, IMGSZ), auto=False, scale_fill=True)(image=image))
    (ours,) = d.run([as_tensor(image)])
    ref = predictor(d.model, image, IMGSZ, d.family.conf, d.family.max_det)
    assert 3 <= len(ref["scores"]) == len(ours["scores"])
    assert np.array_equal(ours["labels"].numpy(), ref["labels"])  # the plugin's label: the model's class + 1
    assert np.abs(ours["boxes"].numpy() - ref["boxes"]).max() <= 0.1
    assert np.abs(ours["scores"].numpy() - ref["scores"]).max() <= 1e-4


def test_class_names_and_the_stretch_geometry():
    d = detector()
    assert d.class_names == ["__background__", *LABELS] and isinstance(d.family, UltralyticsRtDetrFamily)
    analysis = CamEngine(d).analyze(load_image(noise(157, 419, seed=5)))
    g = analysis.geometry
    assert g.original == (157, 419) and g.resized == g.padded == (IMGSZ, IMGSZ) and g.offset == (0.0, 0.0)
    assert list(analysis.levels) == ["P3", "P4", "P5"] and [v.shape[-1] for v in analysis.levels.values()] == [40, 20, 10]


def test_each_detection_is_a_row_of_the_heads_top_k():
    d = detector()
    analysis = CamEngine(d).analyze(load_image(noise(203, 317, seed=7)))
    logits, queries = analysis.capture.memo["logits"], analysis.capture.memo["queries"]
    assert len(analysis.detections) >= 3
    for det, q in zip(analysis.detections, queries, strict=True):
        assert det.score == pytest.approx(float(logits[q, det.label - 1].sigmoid()), abs=1e-6)


def test_a_bright_spot_on_a_wide_image_lands_within_one_feature_cell():
    h, w, (cy, cx) = 720, 1280, (13, 1270)  # stretched to 320x320: cells of 18x32 px (the contract suite runs the others)
    analysis = CamEngine(spot_detector(), "eigencam").analyze(load_image(spot_image(h, w, cy, cx)))
    assert not analysis.detections and analysis.geometry.padded == (IMGSZ, IMGSZ)
    cell_y, cell_x = cell_on_image(analysis.geometry, analysis.grid)
    py, px = peak(cam_for(analysis).values)
    assert abs(py - cy) <= cell_y and abs(px - cx) <= cell_x, ((py, px), (cy, cx), (cell_y, cell_x))


def test_gradients_work_after_the_user_runs_the_model_under_inference_mode():
    d = rtdetr_detector(random_rtdetr(seed=1), imgsz=IMGSZ)
    with torch.inference_mode():  # caches the head's anchors as inference tensors
        d.model(torch.rand(1, 3, IMGSZ, IMGSZ))
    analysis = CamEngine(d).analyze(load_image(noise(157, 211, seed=8)))
    assert not cam_for(analysis, "layercam", analysis.detections[0]).degenerate


# -- telling RT-DETR files from YOLO ones, loading ---------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The probe as a yaml (block style) and both models as ultralytics' trainer saves them (fp16 ``ema``, ``train_args``)."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import ROOT

    tmp = tmp_path_factory.mktemp("rtdetr")
    out = {"probe.yaml": tmp / "probe.yaml", "my-detr.yaml": tmp / "my-detr.yaml", "yolo-like.yaml": tmp / "yolo-like.yaml",
           "rtdetr.pt": tmp / "rtdetr.pt", "yolo.pt": tmp / "yolo.pt"}
    out["probe.yaml"].write_text(yaml.safe_dump(PROBE, sort_keys=False))
    out["my-detr.yaml"].write_text((ROOT / "cfg/models/rt-detr/rtdetr-l.yaml").read_text())
    out["yolo-like.yaml"].write_text((ROOT / "cfg/models/11/yolo11.yaml").read_text())
    for name, model in (("rtdetr.pt", random_rtdetr()), ("yolo.pt", DetectionModel("yolo11n.yaml", nc=5, verbose=False).eval())):
        torch.save({"epoch": -1, "model": None, "ema": copy.deepcopy(model).half(), "train_args": {"imgsz": IMGSZ}}, out[name])
    return out


def test_rtdetr_files_are_told_from_yolo_ones_without_loading_them(files):
    rt = ["rtdetr-l.yaml", "rtdetr-resnet50.yaml", str(files["probe.yaml"]), str(files["my-detr.yaml"]), str(files["rtdetr.pt"])]
    other = ["yolo11n.yaml", str(files["yolo-like.yaml"]), str(files["yolo.pt"]), "https://example.com/rtdetr-l.yaml"]
    assert all(rtdetr.accepts(s) for s in rt) and not any(rtdetr.accepts(s) for s in other)
    order = [d.handles.name for d in registry.for_suffix("x.pt")]
    assert order.index("ultralytics-rtdetr") < order.index("ultralytics-yolo")  # the YOLO loader never sees an RT-DETR file
    assert yolo.accepts(str(files["yolo.pt"]))


def test_load_detector_reads_an_rtdetr_checkpoint_and_a_yaml(files):
    d = load_detector(str(files["rtdetr.pt"]), device="cpu")
    assert isinstance(d.family, UltralyticsRtDetrFamily) and d.family.imgsz == IMGSZ and not d.model.training
    assert d.class_names == ["__background__", *LABELS] and d.name == "rtdetr.pt"
    with pytest.raises(ModelLoadError, match="--camaudit-weights does not apply"):
        load_detector(str(files["rtdetr.pt"]), weights=str(files["rtdetr.pt"]), device="cpu")
    built = load_detector(str(files["probe.yaml"]), device="cpu")
    assert isinstance(built.family, UltralyticsRtDetrFamily) and built.family.imgsz == 640 and not built.model.training
    assert "noise" in built.meta["weights"]
    with pytest.raises(ModelLoadError, match=r"cannot build an ultralytics RT-DETR from rtdetr-zz\.yaml"):
        load_detector("rtdetr-zz.yaml", device="cpu")


def test_a_yolo_model_is_refused_by_name(files):
    from ultralytics.nn.tasks import DetectionModel

    with pytest.raises(ModelLoadError, match="is not an ultralytics RTDETRDetectionModel"):
        rtdetr_detector(DetectionModel("yolo11n.yaml", nc=5, verbose=False))


INNER = """
def test_audit(camaudit):
    case = camaudit.audit({image!r})
    assert case.detector.family.name == "ultralytics-rtdetr" and case.detector.family.imgsz == {imgsz}
    det = case.detections[0]
    cam = case.cam(det, method="layercam")
    assert cam.values.shape == (203, 317) and cam.values.max() == 1.0
    case.assert_survives_without_context(det, max_drop=1.0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("which", ["probe.yaml", "rtdetr.pt", "conftest"])
def test_pytest_run_with_an_rtdetr(pytester, files, which):
    image = pytester.path / "noise.png"
    import cv2

    cv2.imwrite(str(image), noise(203, 317, seed=3))
    args = ["-p", "no:cacheprovider", "--camaudit-score-threshold=0.05"]
    if which == "conftest":
        pytester.makeconftest(f"""
            import pytest
            from ultralytics import RTDETR

            @pytest.fixture(scope="session")
            def camaudit_detector():
                return RTDETR({str(files["rtdetr.pt"])!r})  # the RTDETR object itself: the plugin explains its network
            """)
    else:
        args.append(f"--camaudit-model={files[which]}")
    pytester.makepyfile(INNER.format(image=str(image), imgsz=640 if which == "probe.yaml" else IMGSZ))
    pytester.runpytest(*args).assert_outcomes(passed=1)
